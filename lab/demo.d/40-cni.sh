#!/bin/bash
# Demo: the sriov CNI plugin attaches two real igb VFs to two pod network namespaces
# (vlan, spoofchk off, trust, max_tx_rate, MAC, host-local IPs), the pods ping each other through
# the emulated NIC, and DEL puts the VFs back exactly as they were.
. "$(dirname "$0")/../tests/lib.sh"

PF=$(lab_igb_pf 0) || { echo "no igb PF"; exit 1; }
PFN=$(ls "$PF/net" | head -1)
ip link set "$PFN" up
lab_set_numvfs "$PF" 2 || { echo "VFs did not appear"; exit 1; }
CNI=$BIN/sriov
[ -x "$CNI" ] || { echo "$CNI missing (cargo build)"; exit 1; }
STATE=$(mktemp -d) IPAM=$(mktemp -d)

cni() {  # cni ADD|DEL POD VF_INDEX MAC
  local vf; vf=$(basename "$(readlink "$PF/virtfn$3")")
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/run/netns/$2 CNI_IFNAME=net1 \
    CNI_PATH=$REPO/.tools/cni-bin SRIOV_CNI_STATE_DIR=$STATE "$CNI" <<JSON
{"cniVersion":"1.0.0","name":"demo","type":"sriov","deviceID":"$vf","vlan":100,"spoofchk":"off",
 "trust":"on","max_tx_rate":100,"mac":"$4",
 "ipam":{"type":"host-local","subnet":"169.254.99.0/24","dataDir":"$IPAM"}}
JSON
}

heading "Before: the PF's VFs and their netdevs"
show ip link show "$PFN"
for i in 0 1; do echo "VF$i $(basename "$(readlink "$PF/virtfn$i")") netdev $(ls "$PF/virtfn$i/net")"; done

heading "Two pods (network namespaces), one VF each: CNI ADD"
ip netns add pod-a; ip netns add pod-b
echo "\$ CNI_COMMAND=ADD ... sriov   (pod-a, VF0)"; cni ADD pod-a 0 02:00:00:00:a0:01
echo "\$ CNI_COMMAND=ADD ... sriov   (pod-b, VF1)"; cni ADD pod-b 1 02:00:00:00:b0:01

heading "The PF now lists the VF settings; each pod has its VF as net1"
show ip link show "$PFN"
show ip -n pod-a addr show net1
show ip -n pod-b addr show net1

heading "pod-a pings pod-b through the emulated 82576"
B=$(ip -n pod-b -4 -o addr show net1 | awk '{print $4}' | cut -d/ -f1)
show ip netns exec pod-a busybox ping -c 3 "$B"

heading "CNI DEL: VFs back in the host with their names, MACs and settings"
cni DEL pod-a 0 02:00:00:00:a0:01 && echo "DEL pod-a: ok"
cni DEL pod-b 1 02:00:00:00:b0:01 && echo "DEL pod-b: ok"
show ip link show "$PFN"
for i in 0 1; do echo "VF$i netdev $(ls "$PF/virtfn$i/net")"; done
ip netns del pod-a; ip netns del pod-b
rm -rf "$STATE" "$IPAM"
