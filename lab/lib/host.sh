# lab/lib/host.sh - host side shared by lab/run-tests and lab/demo (sourced, bash).
# lab_build: builds what the guest runs (debug binaries and test binaries) and lists the test
# executables; lab_boot KIND DIR GLOB: boots the lab once with the repo shared at /mnt/host and
# runs lab/lib/guest-run.sh there; the guest's output is streamed unless LAB_QUIET=1.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_DIR=${LAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sriov-lab}
export LAB_DIR

hlog() { printf '[%s] %s\n' "$LAB_TOOL" "$*" >&2; }
hnow() { date +%s.%N; }
helapsed() { awk -v a="$1" -v b="$(hnow)" 'BEGIN{printf "%.1f", b-a}'; }

# new run dir; its test-bins.tsv is the guest's /lab/test-bins.tsv
lab_new_run() {
  mkdir -p "$LAB_DIR/runs"
  RUN="$LAB_DIR/runs/$(date +%Y%m%d-%H%M%S)-$LAB_TOOL-$$"
  mkdir -p "$RUN"
}

# lab_build [tests]: cargo build of every binary; with "tests", also every test binary
# (cargo test --no-run), listed as "name<TAB>executable<TAB>package dir" from cargo's JSON
lab_build() {
  local t0; t0=$(hnow)
  if [ -n "${LAB_CARGO_TEST_JSON:-}" ]; then
    # scripts/test built everything already (`cargo test --workspace --all-targets --no-run`):
    # its binaries carry the lab's extras too, since the daemon's and the device plugin's tests
    # turn those features on (dev-dependencies on themselves), and cargo unifies features.
    [ "${1:-}" = tests ] && lab_test_bins "$LAB_CARGO_TEST_JSON"
    [ -x "$REPO_ROOT/target/debug/sriovdp-fake-kubelet" ] \
      || { hlog "target/debug/sriovdp-fake-kubelet missing: $LAB_CARGO_TEST_JSON's build lacks the lab's features"; return 1; }
    hlog "LAB_CARGO_TEST_JSON: using that build's binaries"
    return 0
  fi
  # The lab's extras, left out of release builds: netdevsim PFs in the daemon (20-daemon.sh's
  # switchdev test) and the fake kubelet binary (demo.d/30-device-plugin.sh).
  (cd "$REPO_ROOT" && cargo build --workspace --bins --locked \
    --features sriov-daemon/netdevsim,sriov-device-plugin/fake-kubelet) || return 1
  if [ "${1:-}" = tests ]; then
    (cd "$REPO_ROOT" && cargo test --workspace --no-run --locked --message-format=json) >"$RUN/cargo-test.json" || {
      grep -o '"rendered":"[^"]*' "$RUN/cargo-test.json" | head -20 | sed 's/^"rendered":"//; s/\\n/\n/g' >&2
      return 1
    }
    lab_test_bins "$RUN/cargo-test.json"
  fi
  hlog "build took $(helapsed "$t0")s"
}

# lab_test_bins JSON: $RUN/test-bins.tsv (name, executable, package dir) of the test harnesses
# (profile "test":true) cargo's JSON lists: not plain binaries (run with --list, a daemon might just
# start) and not benches (a `harness = false` bench would start benchmarking).
lab_test_bins() {
  grep '"executable":"/' "$1" | grep -E '"profile":\{[^}]*"test":true' | grep -v '"kind":\["bench"\]' | while read -r l; do
    local exe man
    exe=$(printf '%s' "$l" | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
    man=$(printf '%s' "$l" | sed -n 's/.*"manifest_path":"\([^"]*\)".*/\1/p')
    printf '%s\t%s\t%s\n' "$(basename "$exe" | sed 's/-[0-9a-f]\{16\}$//')" "$exe" "$(dirname "$man")"
  done | sort -u >"$RUN/test-bins.tsv"
  hlog "$(wc -l <"$RUN/test-bins.tsv") test binaries listed in $RUN/test-bins.tsv"
}

# lab_boot KIND DIR GLOB: exit status of run-lab.sh (2 = the guest never reported).
# $RUN is run-lab.sh's run dir too (LAB_RUN): the guest sees env and test-bins.tsv in /lab.
lab_boot() {
  local kind=$1 dir=$2 glob=$3 rc=0 tpid=""
  printf 'LAB_TEST_TIMEOUT=%q\n' "${LAB_TEST_TIMEOUT:-600}" >"$RUN/env"
  [ -z "${BENCH_PODS:-}" ] || printf 'export BENCH_PODS=%q\n' "$BENCH_PODS" >>"$RUN/env"   # lab/run-bench
  cp "$REPO_ROOT/lab/lib/guest-run.sh" "$RUN/guest-run.sh"
  LAB_RUN="$RUN" LAB_SHARE="$REPO_ROOT" LAB_QUIET=1 \
    "$REPO_ROOT/lab/run-lab.sh" "$RUN/guest-run.sh" "$kind" "$dir" "$glob" "$REPO_ROOT" &
  local pid=$!
  if [ "${LAB_QUIET:-0}" != 1 ]; then
    tail -n +1 -F --pid=$pid "$RUN/out/test.log" 2>/dev/null & tpid=$!
  fi
  wait $pid || rc=$?
  [ -z "$tpid" ] || wait $tpid 2>/dev/null || true
  return $rc
}

# lab_wants GLOB NAME: whether the selection GLOB (LAB_TESTS / LAB_DEMO) runs the script NAME.sh
lab_wants() { case "$2.sh" in $1 | $1.sh) return 0 ;; esac; return 1; }

# lab_cluster: a real kube-apiserver (+ etcd) on the host's loopback, started by sriov-testcluster
# for a kubelet in the guest (node name sriov-lab); the guest reaches it through run-lab.sh's one
# forward (LAB_APISERVER_PORT, guest 10.0.2.100:443). Kubeconfigs go to $RUN/kube (/lab/kube in
# the guest): admin, node (system:node:sriov-lab) and multus (user multus, for the meta plugin,
# which the guest binds to Multus' ClusterRole). The cluster lives until this shell exits.
lab_cluster() {
  (cd "$REPO_ROOT" && bash scripts/deps/20-kubectl.sh >/dev/null && bash scripts/deps/40-k8s.sh >/dev/null) \
    || { hlog "installing kubectl / the Kubernetes test binaries failed"; return 1; }
  mkfifo "$RUN/cluster.in"
  "$REPO_ROOT/target/debug/sriov-testcluster" --remote-node sriov-lab --remote-server https://10.0.2.100:443 \
    --remote-dir "$RUN/kube" <"$RUN/cluster.in" >"$RUN/cluster.json" 2>"$RUN/cluster.log" &
  CLUSTER_PID=$!
  exec {CLUSTER_IN}>"$RUN/cluster.in"
  trap 'exec {CLUSTER_IN}>&-; wait $CLUSTER_PID 2>/dev/null' EXIT
  local _ server
  for _ in $(seq 1 600); do [ -s "$RUN/cluster.json" ] || ! kill -0 $CLUSTER_PID 2>/dev/null && break; sleep 0.1; done
  server=$(sed -n 's/.*"server":"\([^"]*\)".*/\1/p' "$RUN/cluster.json")
  [ -n "$server" ] || { hlog "the kube-apiserver did not start: $(tail -5 "$RUN/cluster.log")"; return 1; }
  export LAB_APISERVER_PORT=${server##*:}
  hlog "kube-apiserver v1.36.2 on $server (the guest's kubelet reaches it as https://10.0.2.100:443)"
}

# lab_injector: our network-resources-injector on the host's loopback, registered with the lab's
# kube-apiserver as the mutating webhook for pod CREATE (as the operator registers it when
# enableInjector is true), so 50-pods' pods name their networks only and get the VF requests
# from the NAD's resourceName annotation. The NAD CRD is installed here first: the injector
# watches NADs from its start. Its log: $RUN/injector.log. Needs lab_cluster.
lab_injector() {
  local kc dir=$RUN/injector port health _ kubectl=$REPO_ROOT/.tools/bin/kubectl
  kc=$(sed -n 's/.*"kubeconfig":"\([^"]*\)".*/\1/p' "$RUN/cluster.json")
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null \
    || { hlog "openssl could not make the injector's certificate"; return 1; }
  "$kubectl" --kubeconfig "$kc" apply -f "$REPO_ROOT/deploy/crds/k8s.cni.cncf.io_network-attachment-definitions.yaml" >/dev/null \
    && "$kubectl" --kubeconfig "$kc" wait --for condition=established --timeout=60s \
      crd/network-attachment-definitions.k8s.cni.cncf.io >/dev/null \
    || { hlog "the NAD CRD could not be installed"; return 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  health=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # -insecure: the apiserver presents no client certificate to webhooks unless configured to.
  KUBECONFIG=$kc NAMESPACE=default "$REPO_ROOT/target/debug/network-resources-injector" -port="$port" \
    -bind-address=127.0.0.1 -health-check-port="$health" -tls-cert-file="$dir/cert.pem" \
    -tls-private-key-file="$dir/key.pem" -insecure >"$RUN/injector.log" 2>&1 &
  INJECTOR_PID=$!
  trap 'kill $INJECTOR_PID 2>/dev/null; exec {CLUSTER_IN}>&-; wait $CLUSTER_PID 2>/dev/null' EXIT
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$health/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$health/readyz" >/dev/null \
    || { hlog "the injector is not ready: $(tail -5 "$RUN/injector.log")"; return 1; }
  "$kubectl" --kubeconfig "$kc" apply -f - >/dev/null <<YAML || { hlog "the injector's webhook could not be registered"; return 1; }
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: network-resources-injector-config}
webhooks:
- name: network-resources-injector-config.k8s.io
  sideEffects: None
  admissionReviewVersions: [v1]
  failurePolicy: Fail
  clientConfig:
    url: https://127.0.0.1:$port/mutate
    caBundle: $(base64 -w0 "$dir/cert.pem")
  rules:
  - {operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}
YAML
  hlog "network-resources-injector on https://127.0.0.1:$port (the lab apiserver's pod webhook)"
}

# lab_node_files: what a containerd node in the guest needs from the host, into $RUN/node
# (/lab/node in the guest; lab/lib/guest-node.sh installs it): Debian's containerd,
# containerd-shim-runc-v2, ctr and runc with the shared libraries ldd lists (runc: libseccomp),
# Debian's reference plugins bridge, host-local and loopback, and the OCI images of
# scripts/images: pause (the sandbox image) and busybox (the pods).
lab_node_files() {
  (cd "$REPO_ROOT" && bash scripts/deps/45-containerd.sh >/dev/null) \
    || { hlog "installing containerd / runc (scripts/deps/45-containerd.sh) failed"; return 1; }
  local img=$REPO_ROOT/target/images want=() b lib
  for b in pause busybox; do
    [ -f "$img/$b.tar" ] && [ "$img/$b.tar" -nt "$REPO_ROOT/scripts/images" ] || want+=("$b")
  done
  [ ${#want[@]} -eq 0 ] || (cd "$REPO_ROOT" && scripts/images "${want[@]}" >&2) \
    || { hlog "scripts/images ${want[*]} failed"; return 1; }
  mkdir -p "$RUN/node/bin" "$RUN/node/lib" "$RUN/node/cni" "$RUN/node/images"
  for b in containerd containerd-shim-runc-v2 ctr runc; do
    b=$(command -v "$b") || { hlog "$b missing"; return 1; }
    cp -L "$b" "$RUN/node/bin/"
    for lib in $(ldd "$b" 2>/dev/null | grep -o '/[^ )]*'); do cp -L "$lib" "$RUN/node/lib/"; done
  done
  for b in bridge host-local loopback; do cp -L "/usr/lib/cni/$b" "$RUN/node/cni/" || return 1; done
  cp "$img/pause.tar" "$img/busybox.tar" "$RUN/node/images/"
  hlog "node files for the guest: $(du -sh "$RUN/node" | cut -f1) in $RUN/node"
}
