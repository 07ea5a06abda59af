#!/bin/bash
# Demo section: the whole attach path with real pods. A real node in the guest: the kubelet
# v1.36.2 on Debian's containerd + runc (lab/lib/guest-node.sh), reporting to the kube-apiserver
# lab/demo started on the host. Its CNI is our `multus` meta plugin (default network: bridge +
# host-local), which reads each pod's k8s.v1.cni.cncf.io/networks annotation, finds the
# NetworkAttachmentDefinition, asks the kubelet's PodResources API which VF the pod was given and
# delegates to our `sriov` plugin; sriovdp serves the VFs. Two pods get a VF each and ping each
# other; deleting them puts the VFs back. lab/tests/50-pods.sh checks the same path in detail.
. "$(dirname "$0")/../tests/lib.sh"
. "$REPO/lab/lib/guest-node.sh"
trap 'node_stop; lab_teardown' EXIT
trap 'exit 1' TERM
NET=sriov-net
kubectl() { k "$@"; }   # so that `show kubectl ...` prints what a reader would type

PF=$(lab_igb_pf 0) || { fail demo:pods "no Intel 82576 (8086:10c9) in the guest"; exit 1; }
PFN=$(ls "$PF/net" | head -1)
ip link set "$PFN" up
lab_set_numvfs "$PF" 3 || { fail demo:pods "VFs did not appear"; exit 1; }

heading "A real node: kubelet v1.36.2 on containerd + runc, CNI = our multus meta plugin"
node_start || exit 1
show cat "$CNI_CONF/00-multus.conf"
cfg=/tmp/dp-config.json
echo '{"resourceList":[{"resourceName":"intel_sriov_netdevice","selectors":[{"vendors":["8086"],"devices":["10ca"],"drivers":["igbvf"]}]}]}' >"$cfg"
node_sriovdp "$cfg" intel_sriov_netdevice=3 || exit 1
show kubectl get nodes -o wide

heading "An SR-IOV network (a NetworkAttachmentDefinition for the sriov CNI, tied to the VF pool) and two pods asking for it"
NAD_CONFIG='{"cniVersion":"1.0.0","type":"sriov","vlan":100,"spoofchk":"off","trust":"on","capabilities":{"mac":true},"ipam":{"type":"host-local","subnet":"10.56.100.0/24"}}'
yaml=$(node_nad "$NET" intel.com/intel_sriov_netdevice "$NAD_CONFIG"
       node_pod pod-a "[{\"name\":\"$NET\",\"mac\":\"02:00:00:00:a0:01\"}]" intel.com/intel_sriov_netdevice
       node_pod pod-b "[{\"name\":\"$NET\",\"mac\":\"02:00:00:00:b0:01\"}]" intel.com/intel_sriov_netdevice)
echo "$yaml"
echo "\$ kubectl create -f -"
k create -f - <<<"$yaml"
if node_pods_running pod-a pod-b; then pass demo:pods-running; else fail demo:pods-running "$(k get pods --no-headers 2>&1)"; fi
show kubectl get pods -o wide
node_containers

heading "Which VF each pod holds (the kubelet's PodResources API) and what the meta plugin wrote"
show "$BIN/sriovctl" pod-resources --resource intel.com/intel_sriov_netdevice
for p in pod-a pod-b; do
  echo "\$ kubectl get pod $p -o jsonpath='{.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}'"
  k get pod "$p" -o 'jsonpath={.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}'; echo
done

heading "The PF shows the NAD's settings on the two VFs; inside pod-a, net1 is its VF"
show ip link show "$PFN"
NS=$(pod_netns pod-a)
show ip -n "$NS" addr show net1
echo "net1's PCI device: $(ip netns exec "$NS" readlink /sys/class/net/net1/device)"

heading "pod-a pings pod-b over the VFs (exec in the container, through containerd + runc)"
IPB=$(ip -n "$(pod_netns pod-b)" -4 -o addr show net1 | awk '{print $4}' | cut -d/ -f1)
echo "\$ ctr -n k8s.io task exec <pod-a's container> /bin/busybox ping -c 3 $IPB"
if pod_exec pod-a /bin/busybox ping -c 3 -W 5 "$IPB"; then pass demo:ping; else fail demo:ping "pod-a -> $IPB"; fi

heading "Delete the pods: the meta plugin's DEL gives the VFs back to the host"
show kubectl delete pod pod-a pod-b --wait=true --timeout=120s
# The API lets go of the pods first; the sandboxes' CNI DEL (the VFs' return) follows.
vfs_home() { [ "$(lab_vf_netdevs "$PF")" = 3 ] && ! ip link show "$PFN" | grep -q 'vlan 100'; }
if wait_for 60 vfs_home; then pass demo:vfs-back; else fail demo:vfs-back "VF netdevs or PF settings not restored"; fi
show ip link show "$PFN"
for i in 0 1 2; do echo "VF$i $(basename "$(readlink "$PF/virtfn$i")") on $(basename "$(readlink "$PF/virtfn$i/driver")"), netdev $(ls "$PF/virtfn$i/net" 2>/dev/null)"; done
exit "$LAB_FAILS"
