#!/usr/bin/env bash
# A real Kubernetes control plane for the tests (crates/testcluster, the way controller-runtime's
# envtest runs its assets): kube-apiserver, kubelet, kube-controller-manager, kube-scheduler and
# the kubelet's fake CRI (v1.36.2, from ../shared/k8s or $SRIOV_K8S_SOURCE, checked against its SHA256SUMS) unpacked
# into the ignored .tools/k8s/v1.36.2/, and etcd from Debian (etcd-server, /usr/bin/etcd), linked
# into the same directory so one path ($SRIOV_K8S_ASSETS or $KUBEBUILDER_ASSETS) names them all.
# Idempotent: nothing is redone when etcd is installed and the binaries were verified.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=v1.36.2
src="${SRIOV_K8S_SOURCE:-../shared/k8s}"
out=".tools/k8s/$version"
bins=(kube-apiserver kubelet kube-controller-manager kube-scheduler fakecri)

if ! dpkg -s etcd-server >/dev/null 2>&1; then
  apt-get update -qq
  # No init system runs here; policy-rc.d keeps the package's own etcd service from starting.
  policy=/usr/sbin/policy-rc.d
  created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
  [ "$created" = 0 ] || rm -f "$policy"
fi
[ -x /usr/bin/etcd ] || { echo "etcd-server installed but /usr/bin/etcd is missing" >&2; exit 1; }

mkdir -p "$out"
ln -sfn /usr/bin/etcd "$out/etcd"
# .verified holds the SHA256SUMS the binaries were last checked against: unchanged source sums
# and every binary present means nothing to do (a second run takes milliseconds).
all_present() { for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done; }
if all_present && [ -f "$out/.verified" ] && cmp -s "$out/.verified" "$src/SHA256SUMS"; then
  exit 0
fi
if [ ! -f "$src/SHA256SUMS" ]; then
  echo "40-k8s.sh: no $src/SHA256SUMS, so no Kubernetes binaries to unpack (set SRIOV_K8S_SOURCE)" >&2
  # Under CI that is an error; elsewhere the tests that need them skip with a message.
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
for b in "${bins[@]}"; do
  xz -dc "$src/$b.xz" > "$out/$b.tmp"
  chmod +x "$out/$b.tmp"
  mv -f "$out/$b.tmp" "$out/$b"
done
grep -E " \*?($(IFS='|'; echo "${bins[*]}"))\$" "$src/SHA256SUMS" > "$out/SHA256SUMS"
(cd "$out" && sha256sum --quiet -c SHA256SUMS)
cp "$src/SHA256SUMS" "$out/.verified"
echo "Kubernetes $version test assets in $out"
