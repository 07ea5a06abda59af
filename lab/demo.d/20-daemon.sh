#!/bin/bash
# Demo section: sriov-network-config-daemon (file mode) configures the lab's real igb from a
# SriovNetworkNodeState: 4 VFs, VFs 0-2 on the netdevice driver, VF 3 on vfio-pci; re-applying
# writes nothing; `sriovctl plan` tells when a change needs a drain (and when it does not).
. "$(dirname "$0")/../tests/lib.sh"

PF=$(lab_igb_pf 0) || { echo "FAIL demo:daemon: no Intel 82576 (8086:10c9) in the guest"; exit 1; }
PFA=${PF##*/}
PFN=$(ls "$PF/net" | head -1)
W=$(mktemp -d)
SPEC=$W/node-state.yaml LOG=$W/daemon.log
export SRIOV_DAEMON_STATE_DIR=$W/state SRIOV_DAEMON_RESYNC_SECS=600 RUST_LOG=warn
# any VFs left by an earlier section: start from the booted state
lab_teardown >/dev/null 2>&1

write_spec() { # NUMVFS [PF_MTU] [OUT]
  grep -v '^$' >"$SPEC.tmp" <<YAML
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodeState
metadata: {name: lab-node, namespace: sriov-network-operator}
spec:
  interfaces:
  - pciAddress: "$PFA"
    name: $PFN
    numVfs: $1
$([ "${2:-0}" != 0 ] && echo "    mtu: $2")
    vfGroups:
    - {resourceName: intel_sriov_netdevice, deviceType: netdevice, vfRange: "0-2", policyName: netdev}
    - {resourceName: intel_sriov_dpdk, deviceType: vfio-pci, vfRange: "3-3", policyName: dpdk}
YAML
  mv "$SPEC.tmp" "${3:-$SPEC}"
}
syncs() { grep -c '^sync: ' "$LOG" 2>/dev/null || echo 0; }
syncs_gt() { [ "$(syncs)" -gt "$1" ]; }
wait_sync() { wait_for 90 syncs_gt "$1"; grep '^sync: ' "$LOG" | tail -1; }

heading "The node's SriovNetworkNodeState, as the operator renders it (upstream's shape)"
write_spec 4
cat "$SPEC"

heading "sriovctl plan: what the daemon will do on this node, and what it means for workloads"
show "$BIN/sriovctl" plan -f "$SPEC"

heading "sriov-network-config-daemon --node-state-file $SPEC"
t0=${EPOCHREALTIME/./}
"$BIN/sriov-network-config-daemon" --node-state-file "$SPEC" 2>>"$LOG" &
PID=$!
wait_sync 0 || { echo "FAIL demo:daemon: no sync"; tail "$LOG"; exit 1; }
echo "(applied in $(( (${EPOCHREALTIME/./} - t0) / 1000 )) ms, VF netdevs and driver binds awaited)"
show "$BIN/sriovctl" discover

heading "Status written back ($SPEC.status.json, excerpt)"
grep -E '"syncStatus"|"numVfs"|"driver"|"vfID"' "$SPEC.status.json" | head -14

heading "The same spec again (the file replaced by a rename): zero host writes, no VF re-created"
n=$(syncs); write_spec 4; wait_sync "$n"

heading "A pod takes VF 1 (its netdev moves into the pod's network namespace)"
VF1N=$(ls "$PF/virtfn1/net" | head -1)
ip netns add pod1 && show ip link set "$VF1N" netns pod1
write_spec 6 0 "$W/six.yaml"
echo "numVfs 4 -> 6 re-creates every VF of the PF, including the pod's:"
show "$BIN/sriovctl" plan -f "$W/six.yaml"
write_spec 4 9000 "$W/mtu.yaml"
echo "an MTU raise is applied live (upstream drains the node for this):"
show "$BIN/sriovctl" plan -f "$W/mtu.yaml"
ip -n pod1 link set "$VF1N" netns 1; ip netns delete pod1
wait_for 10 test -e "$PF/virtfn1/net/$VF1N"

heading "The pod is gone: numVfs 4 -> 6 applied without any drain"
n=$(syncs); write_spec 6; wait_sync "$n"
echo "VFs now: $(cat "$PF/sriov_numvfs"), VF 3 on $(basename "$(readlink "$PF/virtfn3/driver")")"
echo "daemon memory: $(awk '/^VmHWM/{print $2 " kB peak RSS"}' "/proc/$PID/status")"

kill -TERM $PID; wait $PID
echo "(daemon stopped by SIGTERM: exit $?)"
