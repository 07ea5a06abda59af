#!/bin/bash
# Issue 14 in the lab: pods get real igb VFs end to end. A real node in the guest (the kubelet
# v1.36.2 on Debian's containerd + runc, lab/lib/guest-node.sh) against the kube-apiserver
# lab/run-tests started on the host; the node's CNI is our `multus` meta plugin (default network
# bridge + host-local) delegating to our `sriov` plugin for the NetworkAttachmentDefinition
# sriov-net (resource intel.com/intel_sriov_netdevice: vlan 100, spoofchk off, trust on; the MAC
# per pod from the selection element); sriovdp serves VF0-2 on igbvf and VF3 on vfio-pci.
# The config daemon creates the VFs from a node state (file mode); the network-resources-injector
# (on the host) adds the pods' VF requests from the NAD.
# Checks: two pods get distinct VFs, the ones PodResources reports for them, as net1 in their own
# network namespace with the NAD's settings on the PF (`ip link show <pf>`), network-status naming
# them, and ping each other over the VFs (exec in the pod through containerd); pod-b also takes
# the vfio-pci pool's VF and gets its /dev/vfio/N and PCIDEVICE_* env; deleting the pods returns every VF as
# it was (igbvf, same netdev name and MAC, in the host netns, PF settings restored), every lease,
# netns and meta plugin cache freed.
. "$(dirname "$0")/lib.sh"
. "$REPO/lab/lib/guest-node.sh"
trap 'kill ${DAEMON_PID:-} 2>/dev/null; node_stop; lab_teardown' EXIT
trap 'exit 1' TERM   # the runner's time limit: tear down all the same

NET=sriov-net
RES_NET=intel.com/intel_sriov_netdevice
RES_DPDK=intel.com/intel_sriov_dpdk
MAC_A=02:00:00:00:a0:01 MAC_B=02:00:00:00:b0:01

PF=$(lab_igb_pf 0) || { fail pods:igb-pf "no 8086:10c9 PF"; exit 1; }
PFN=$(ls "$PF/net" | head -1)
ip link set "$PFN" up
# The config daemon makes the VFs, as the operator's node state asks (file mode: the node state
# the operator would write, 4 VFs, 0-2 igbvf, 3-3 vfio-pci), and stays up as on a node.
W=$(mktemp -d)
cat >"$W/node.yaml" <<YAML
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodeState
metadata: {name: sriov-lab, namespace: sriov-network-operator, generation: 1}
spec:
  interfaces:
  - pciAddress: "${PF##*/}"
    name: $PFN
    numVfs: 4
    vfGroups:
    - {resourceName: intel_sriov_netdevice, deviceType: netdevice, vfRange: "0-2", policyName: net}
    - {resourceName: intel_sriov_dpdk, deviceType: vfio-pci, vfRange: "3-3", policyName: dpdk}
YAML
SRIOV_DAEMON_STATE_DIR=$W/state SRIOV_DAEMON_RESYNC_SECS=600 "$BIN/sriov-network-config-daemon" --node-state-file "$W/node.yaml" \
  >"$LAB_OUT/config-daemon.log" 2>&1 &
DAEMON_PID=$!
daemon_synced() { grep -q '^sync: ' "$LAB_OUT/config-daemon.log"; }
wait_for 180 daemon_synced
check_eq pods:daemon-sync "sync: Succeeded" "$(grep '^sync: ' "$LAB_OUT/config-daemon.log" | tail -1 | cut -d' ' -f1-2)"
check_eq pods:daemon-numvfs 4 "$(cat "$PF/sriov_numvfs")"
VF3=$(basename "$(readlink "$PF/virtfn3")")
check_eq pods:daemon-vf3-vfio vfio-pci "$(basename "$(readlink "/sys/bus/pci/devices/$VF3/driver")")"
[ "$(cat "$PF/sriov_numvfs")" = 4 ] || { tail -20 "$LAB_OUT/config-daemon.log"; exit 1; }

# Each VF as it is before any pod: driver, netdev name, its MAC, the PF's line for it.
vf_line() { ip link show "$PFN" | grep "^ *vf $1 " | sed 's/^ *//'; }
vf_state() {  # vf_state I: what must be the same after the pods are gone
  local d=$PF/virtfn$1 n
  n=$(ls "$d/net" 2>/dev/null)
  echo "driver=$(basename "$(readlink "$d/driver")") netdev=$n mac=$(cat "/sys/class/net/$n/address" 2>/dev/null) pf: $(vf_line "$1")"
}
declare -A BEFORE VF_INDEX
for i in 0 1 2; do
  BEFORE[$i]=$(vf_state "$i")
  VF_INDEX[$(basename "$(readlink "$PF/virtfn$i")")]=$i
done

node_start || exit 1

cfg=/tmp/dp-config.json
cat >"$cfg" <<JSON
{"resourceList":[
  {"resourceName":"intel_sriov_netdevice","selectors":[{"vendors":["8086"],"devices":["10ca"],"drivers":["igbvf"]}]},
  {"resourceName":"intel_sriov_dpdk","selectors":[{"drivers":["vfio-pci"],"pfNames":["$PFN#0-6"]}]}
]}
JSON
node_sriovdp "$cfg" intel_sriov_netdevice=3 intel_sriov_dpdk=1 || exit 1
pass pods:allocatable

# The NAD, then two pods that name the network only: the network-resources-injector (on the
# host, the apiserver's pod webhook: lab_injector) adds the VF request from the NAD's
# resourceName. pod-b also asks for the vfio-pci pool's VF itself (not a network).
NAD_CONFIG='{"cniVersion":"1.0.0","type":"sriov","vlan":100,"spoofchk":"off","trust":"on","capabilities":{"mac":true},"ipam":{"type":"host-local","subnet":"10.56.100.0/24","rangeStart":"10.56.100.10","rangeEnd":"10.56.100.20"}}'
node_nad "$NET" "$RES_NET" "$NAD_CONFIG" | k create -f - >/dev/null || fail pods:create-nad "kubectl create the NAD"
pods_yaml() {
  node_pod pod-a "[{\"name\":\"$NET\",\"mac\":\"$MAC_A\"}]"
  node_pod pod-b "[{\"name\":\"$NET\",\"mac\":\"$MAC_B\"}]" "$RES_DPDK"
}
t0=$(ms)
# (the injector learns of the NAD from its watch; a pod admitted before that is refused naming
# the NAD, so it is retried for a few seconds; apply, as a pod admitted at the first try stays)
created() { pods_yaml | k apply -f - >/dev/null 2>"$W/create.err"; }
wait_for 30 created || fail pods:create "kubectl create the pods: $(cat "$W/create.err")"
for p in a b; do
  check_eq "pods:pod-$p-vf-request-injected" 1 \
    "$(k get pod "pod-$p" -o 'jsonpath={.spec.containers[0].resources.requests.intel\.com/intel_sriov_netdevice}')"
done
if node_pods_running pod-a pod-b; then pass pods:running; else
  fail pods:running "$(k get pods -o wide --no-headers 2>&1); events: $(k get events -o 'jsonpath={.items[*].message}' 2>&1 | tail -c 600)"
fi
echo "(2 pods create -> Ready: $(( $(ms) - t0 )) ms under TCG)"
k get pods -o wide
node_containers
# What the pods hold while they run (so that "nothing left" below means something was freed).
check_eq pods:leases-held 2 "$(ls /var/lib/cni/networks/$NET 2>/dev/null | grep -c '^10\.56\.100\.')"
check pods:meta-cache-held test -n "$(find "$MULTUS_CACHE" -type f 2>/dev/null)"
# Which VF each pod holds, says the kubelet's PodResources API.
pr=$("$BIN/sriovctl" pod-resources --resource "$RES_NET")
echo "$pr"
DEV_A=$(awk '$2 == "pod-a" {print $5}' <<<"$pr")
DEV_B=$(awk '$2 == "pod-b" {print $5}' <<<"$pr")
check pods:pod-resources-one-vf-each test -n "$DEV_A" -a -n "$DEV_B" -a "${DEV_A/,/}" = "$DEV_A" -a "${DEV_B/,/}" = "$DEV_B"
check pods:distinct-vfs test "$DEV_A" != "$DEV_B"

declare -A IP
for p in a b; do
  dev=DEV_${p^^}; dev=${!dev}; mac=MAC_${p^^}; mac=${!mac}
  ns=$(pod_netns "pod-$p")
  [ -n "$ns" ] || { fail "pods:pod-$p-netns" "no netns for pod-$p (pid $(pod_pid "pod-$p"))"; continue; }
  echo "pod-$p: netns $ns, VF $dev"
  ip -n "$ns" -br addr
  # the VF PodResources named is the pod's net1 (the meta plugin delegated, named it net1, passed the device)
  check_eq "pods:pod-$p-links" "lo eth0 net1" "$(ip -n "$ns" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | tr '\n' ' ' | sed 's/ $//')"
  check_eq "pods:pod-$p-net1-is-its-vf" "$dev" "$(ip netns exec "$ns" readlink /sys/class/net/net1/device | xargs basename)"
  check_eq "pods:pod-$p-net1-mac" "$mac" "$(ip netns exec "$ns" cat /sys/class/net/net1/address)"
  IP[$p]=$(ip -n "$ns" -4 -o addr show net1 | awk '{print $4}' | cut -d/ -f1)
  case ${IP[$p]} in 10.56.100.*) pass "pods:pod-$p-net1-ip" ;; *) fail "pods:pod-$p-net1-ip" "net1 has '${IP[$p]}'" ;; esac
  # the NAD's settings on the PF, for this VF
  idx=${VF_INDEX[$dev]:-}
  line=$(vf_line "$idx")
  echo "$PFN: $line"
  check "pods:pod-$p-pf-mac" grep -q "link/ether $mac " <<<"$line"
  check "pods:pod-$p-pf-vlan" grep -q ", vlan 100," <<<"$line"
  check "pods:pod-$p-pf-spoofchk" grep -q "spoof checking off" <<<"$line"
  check "pods:pod-$p-pf-trust" grep -q "trust on" <<<"$line"
  # network-status: the default network, then sriov-net on net1 with the VF's PCI address
  st_raw=$(k get pod "pod-$p" -o 'jsonpath={.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}')
  echo "network-status of pod-$p: $st_raw"
  st=$(tr -d ' \n\t' <<<"$st_raw")
  check "pods:pod-$p-status-default" grep -q '^\[{"name":"lab-default","interface":"eth0"' <<<"$st"
  entry=$(sed 's/},{"name"/}\n{"name"/g' <<<"$st" | grep "^{\"name\":\"default/$NET\"")
  check "pods:pod-$p-status-net1" grep -q '"interface":"net1"' <<<"$entry"
  check "pods:pod-$p-status-ip-mac" grep -q "\"ips\":\[\"${IP[$p]}\"\],\"mac\":\"$mac\"" <<<"$entry"
  check "pods:pod-$p-status-device-info" grep -q "\"pci-address\":\"$dev\"" <<<"$entry"
done

# The pods ping each other over the VFs (exec in the containers, through containerd and runc).
if [ -n "${IP[a]:-}" ] && [ -n "${IP[b]:-}" ]; then
  check pods:a-pings-b pod_exec pod-a /bin/busybox ping -c 3 -W 5 "${IP[b]}"
  check pods:b-pings-a pod_exec pod-b /bin/busybox ping -c 3 -W 5 "${IP[a]}"
fi

# The vfio-pci pool: pod-b's /dev/vfio/<group> and PCIDEVICE_* env.
group=$(basename "$(readlink "/sys/bus/pci/devices/$VF3/iommu_group")")
check pods:dpdk-dev-vfio pod_exec pod-b /bin/busybox test -c "/dev/vfio/$group" -a -c /dev/vfio/vfio
check_eq pods:dpdk-env "PCIDEVICE_INTEL_COM_INTEL_SRIOV_DPDK=$VF3" \
  "$(pod_exec pod-b /bin/busybox env | grep '^PCIDEVICE_INTEL_COM_INTEL_SRIOV_DPDK=')"

# Delete: every VF back as it was, nothing left.
t0=$(ms)
k delete pod pod-a pod-b --wait=true --timeout=180s >/dev/null || fail pods:delete "pods still there"
echo "(2 pods deleted: $(( $(ms) - t0 )) ms)"
vf_back() { [ "$(vf_state "$1")" = "${BEFORE[$1]}" ]; }
for i in 0 1 2; do
  wait_for 60 vf_back "$i"   # the sandbox's teardown may finish just after the API lets go of the pod
  check_eq "pods:vf$i-restored" "${BEFORE[$i]}" "$(vf_state "$i")"
  n=$(ls "$PF/virtfn$i/net" 2>/dev/null)
  check "pods:vf$i-in-host-netns" test -n "$n" -a -e "/sys/class/net/$n"
done
check_eq pods:no-netns-left "" "$(ip netns list)"
check_eq pods:no-lease-left "" "$(ls /var/lib/cni/networks/$NET 2>/dev/null | grep -v -e '^lock$' -e '^last_reserved_ip')"
check_eq pods:no-meta-cache-left "" "$(find "$MULTUS_CACHE" -type f 2>/dev/null | grep -v '/results/' ; ls "$MULTUS_CACHE/results" 2>/dev/null)"
check_eq pods:no-pod-resources-left "" "$("$BIN/sriovctl" pod-resources --resource "$RES_NET" | tail -n +2)"
exit "$LAB_FAILS"
