#!/bin/bash
# Demo section: sriovdp on the lab's real igb VFs, registered with a REAL kubelet (v1.36, from
# ../shared/k8s, on its own fake container runtime) that runs in this guest and reports to a real
# kube-apiserver on the host (lab/demo starts it; the guest reaches it through QEMU's restricted
# user network, 10.0.2.100:443 -> host loopback). Shows what the cluster sees: the Node's
# allocatable, a pod asking for 2 VFs running, and the kubelet's PodResources answer (what Kuryr
# and Multus read). Also `sriovctl explain`.
. "$(dirname "$0")/../tests/lib.sh"

KUBE=/lab/kube
K8S=$REPO/.tools/k8s/v1.36.2
KUBECTL=$REPO/.tools/bin/kubectl
NODE=sriov-lab
for f in "$KUBE/admin.kubeconfig" "$KUBE/node.kubeconfig" "$K8S/kubelet" "$K8S/fakecri" "$KUBECTL"; do
  [ -e "$f" ] || { echo "FAIL demo:device-plugin: $f missing (lab/demo starts the apiserver and passes it in)"; exit 1; }
done
k() { "$KUBECTL" --kubeconfig "$KUBE/admin.kubeconfig" "$@"; }

PF=$(lab_igb_pf 0) || { echo "FAIL demo:device-plugin: no Intel 82576 (8086:10c9) in the guest"; exit 1; }
PFN=$(ls "$PF/net" | head -1)
[ "$(cat "$PF/sriov_numvfs")" -ge 4 ] || lab_set_numvfs "$PF" 4 || { echo "FAIL demo:device-plugin: VFs"; exit 1; }
ip link set "$PFN" up
VF3=$(basename "$(readlink "$PF/virtfn3")")
[ "$(basename "$(readlink "$PF/virtfn3/driver")")" = vfio-pci ] || lab_bind "$VF3" vfio-pci || echo "(vfio-pci bind of $VF3 failed: no IOMMU?)"

cfg=/tmp/dp-config.json
cat >"$cfg" <<JSON
{"resourceList":[
  {"resourceName":"intel_sriov_netdevice","selectors":[{"vendors":["8086"],"devices":["10ca"],"drivers":["igbvf"]}]},
  {"resourceName":"intel_sriov_dpdk","selectors":[{"drivers":["vfio-pci"],"pfNames":["$PFN#0-6"]}]}
]}
JSON
heading "The device plugin config (upstream's format, unchanged)"
cat "$cfg"

heading "sriovctl explain: which pool takes each device, and why not the others"
show "$BIN/sriovctl" explain --config "$cfg"

# The node's network: the virtio NIC on QEMU's user network (not the igb under test).
IF=$(for n in /sys/class/net/*; do [ "$(basename "$(readlink "$n/device/driver" 2>/dev/null)")" = virtio_net ] && basename "$n"; done | head -1)
[ -n "$IF" ] || { echo "FAIL demo:device-plugin: no virtio NIC (LAB_APISERVER_PORT not set?)"; exit 1; }
ip link set "$IF" up && ip addr add 10.0.2.15/24 dev "$IF" && ip route add default via 10.0.2.2

heading "A real kubelet (v1.36.2) on this node, with the kubelet's own fake container runtime"
mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null
mkdir -p /usr/local/bin /etc/kubernetes /var/lib/kubelet
cp "$K8S/kubelet" "$K8S/fakecri" /usr/local/bin/
cat >/etc/kubernetes/kubelet.yaml <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
cgroupDriver: cgroupfs
localStorageCapacityIsolation: false
resolvConf: ""
evictionHard: {memory.available: "1%", nodefs.available: "1%", imagefs.available: "1%"}
authentication: {webhook: {enabled: false}, anonymous: {enabled: false}}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix:///run/fakecri.sock
YAML
/usr/local/bin/fakecri -listen unix:///run/fakecri.sock >"$LAB_OUT/fakecri.log" 2>&1 &
/usr/local/bin/kubelet --config /etc/kubernetes/kubelet.yaml --kubeconfig "$KUBE/node.kubeconfig" \
  --root-dir /var/lib/kubelet --hostname-override "$NODE" --node-ip 10.0.2.15 >"$LAB_OUT/kubelet.log" 2>&1 &
node_ready() { [ "$(k get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
if wait_for 180 node_ready; then pass demo:kubelet-ready; else
  fail demo:kubelet-ready "node $NODE not Ready; see $LAB_OUT/kubelet.log"; tail -20 "$LAB_OUT/kubelet.log"; exit 1
fi
show k get nodes -o wide

heading "sriovdp with upstream's command line; the kubelet finds it in plugins_registry/"
ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }   # busybox date has no %N
t0=$(ms)
"$BIN/sriovdp" --config-file "$cfg" >"$LAB_OUT/sriovdp.log" 2>&1 &
alloc() { k get node "$NODE" -o "jsonpath={.status.allocatable.intel\.com/$1}"; }
alloc_is() { [ "$(alloc "$1")" = "$2" ]; }
if wait_for 120 alloc_is intel_sriov_netdevice 3; then
  pass demo:allocatable; echo "(sriovdp exec -> allocatable on the Node: $(( $(ms) - t0 )) ms under TCG)"
else
  fail demo:allocatable "intel.com/intel_sriov_netdevice is '$(alloc intel_sriov_netdevice)', want 3"; tail -20 "$LAB_OUT/sriovdp.log"
fi
show k get node "$NODE" -o 'jsonpath={.status.allocatable}'; echo

heading "A pod asking for 2 VFs"
k apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: two-vfs, namespace: default}
spec:
  nodeName: $NODE
  automountServiceAccountToken: false
  containers:
  - name: app
    image: sriov-rs.local/pause:demo
    resources:
      requests: {intel.com/intel_sriov_netdevice: "2"}
      limits: {intel.com/intel_sriov_netdevice: "2"}
YAML
running() { [ "$(k get pod two-vfs -o 'jsonpath={.status.phase}')" = Running ]; }
if wait_for 120 running; then pass demo:pod-running; else fail demo:pod-running "$(k get pod two-vfs -o wide 2>&1 | tail -1)"; fi
show k get pod two-vfs -o wide

heading "The kubelet's PodResources API: which VFs the pod holds (what Kuryr and Multus read)"
show "$BIN/sriovctl" pod-resources --resource intel.com/intel_sriov_netdevice
held=$("$BIN/sriovctl" pod-resources --resource intel.com/intel_sriov_netdevice -o json | grep -c '"0000:')
check_eq demo:pod-resources 2 "$held"
k delete pod two-vfs --grace-period=0 --force >/dev/null 2>&1   # its kubelet goes now
kill $(jobs -p) 2>/dev/null
exit "$LAB_FAILS"
