#!/bin/bash
# sriov-network-config-daemon in file mode on the lab's real igb: apply the lab spec (4 VFs, 0-2
# netdevice, 3-3 vfio-pci), re-apply with zero host writes, 4 -> 6, MTU, kill -9 mid-apply and
# restart, bad specs -> Failed naming PF and field, PF removed -> 0 VFs, SIGTERM stops.
. "$(dirname "$0")/lib.sh"

D=$BIN/sriov-network-config-daemon
PF=$(lab_igb_pf 0) || { fail daemon:igb-pf "no igb PF"; exit 1; }
PFA=${PF##*/}
PFN=$(ls "$PF/net" | head -1)
W=$(mktemp -d)
SPEC=$W/node.yaml
STATUS=$SPEC.status.json
LOG=$W/daemon.log
export SRIOV_DAEMON_STATE_DIR=$W/state SRIOV_DAEMON_RESYNC_SECS=600 RUST_LOG=${RUST_LOG:-info}
[ -x "$D" ] || { fail daemon:binary "$D missing (cargo build)"; exit 1; }

# spec NUMVFS [PF_MTU] [VF_MTU] [VFIO_TYPE]: writes the node state by a rename (as a config
# manager), to $SPEC or to $OUT when set
spec() {
  local n=$1 mtu=${2:-0} vfmtu=${3:-0} vt=${4:-vfio-pci}
  {
    echo "apiVersion: sriovnetwork.openshift.io/v1"
    echo "kind: SriovNetworkNodeState"
    echo "metadata: {name: lab, namespace: sriov-network-operator, generation: $((++GEN))}"
    echo "spec:"
    echo "  interfaces:"
    echo "  - pciAddress: \"$PFA\""
    echo "    name: $PFN"
    echo "    numVfs: $n"
    [ "$mtu" != 0 ] && echo "    mtu: $mtu"
    echo "    vfGroups:"
    echo "    - {resourceName: lab_netdevice, deviceType: netdevice, vfRange: \"0-2\", policyName: p1$([ "$vfmtu" != 0 ] && echo ", mtu: $vfmtu")}"
    echo "    - {resourceName: lab_vfio, deviceType: $vt, vfRange: \"3-3\", policyName: p2}"
  } >"$SPEC.tmp"
  mv "$SPEC.tmp" "${OUT:-$SPEC}"
}
GEN=0
syncs() { grep -c '^sync: ' "$LOG" 2>/dev/null || echo 0; }
syncs_gt() { [ "$(syncs)" -gt "$1" ]; }
last_sync() { grep '^sync: ' "$LOG" | tail -1; }
# wait_sync N: waits until more than N sync lines were printed (max 90 s)
wait_sync() { wait_for 90 syncs_gt "$1" || { echo "no sync after $1; log:"; tail -20 "$LOG"; }; }
start() { "$D" --node-state-file "$SPEC" 2>>"$LOG" & PID=$!; }
vf_drv() { basename "$(readlink "$PF/virtfn$1/driver" 2>/dev/null)" 2>/dev/null; }
vf_macs() { for v in "$PF"/virtfn[0-2]; do cat "$v"/net/*/address; done | tr '\n' ' '; }
status_has() { grep -q -- "$1" "$STATUS"; }
# in_status TEXT: TEXT in the status part of the status file (not in the spec echoed before it)
in_status() { sed -n '/^  "status": {/,$p' "$STATUS" | grep -q -- "$1"; }

heading "apply the lab spec: 4 VFs, 0-2 netdevice, 3-3 vfio-pci"
spec 4
t0=${EPOCHREALTIME/./}
start
wait_sync 0
t1=${EPOCHREALTIME/./}
echo "first apply: $(( (t1 - t0) / 1000 )) ms: $(last_sync)"
check_eq daemon:apply-succeeded "sync: Succeeded" "$(last_sync | cut -d' ' -f1-2)"
check_eq daemon:numvfs-4 4 "$(cat "$PF/sriov_numvfs")"
check_eq daemon:vf0-igbvf igbvf "$(vf_drv 0)"
check_eq daemon:vf2-igbvf igbvf "$(vf_drv 2)"
check_eq daemon:vf3-vfio vfio-pci "$(vf_drv 3)"
G3=$(basename "$(readlink "$PF/virtfn3/iommu_group")")
check daemon:vf3-dev-vfio test -c "/dev/vfio/$G3"
check daemon:vf-netdevs-present test "$(ls -d "$PF"/virtfn[0-2]/net/* 2>/dev/null | wc -l)" = 3
check daemon:status-succeeded status_has '"syncStatus": "Succeeded"'
check daemon:status-vf3-vfio in_status '"driver": "vfio-pci"'
check daemon:status-numvfs in_status '"numVfs": 4'

heading "same spec again: zero host writes, VFs not re-created"
MACS=$(vf_macs)
n=$(syncs); spec 4; wait_sync "$n"
echo "$(last_sync)"
check_eq daemon:reapply-zero-writes "sync: Succeeded writes=0 actions=0" "$(last_sync)"
check_eq daemon:vfs-not-recreated "$MACS" "$(vf_macs)"

heading "restart with the same spec: nothing re-applied"
kill -TERM $PID; wait $PID; rc=$?
check_eq daemon:sigterm-exit-0 0 "$rc"
n=$(syncs); start; wait_sync "$n"
check_eq daemon:restart-zero-writes "sync: Succeeded writes=0 actions=0" "$(last_sync)"
check_eq daemon:restart-vfs-kept "$MACS" "$(vf_macs)"

heading "sriovctl plan: the verdict with a VF in use (its netdev moved into a pod's netns)"
VF1N=$(ls "$PF/virtfn1/net" | head -1)
ip netns add pod1 && ip link set "$VF1N" netns pod1
VF1=$(basename "$(readlink "$PF/virtfn1")")
OUT=$W/plan6.yaml spec 6
show "$BIN/sriovctl" plan -f "$W/plan6.yaml" | tee "$W/plan6.out"
check daemon:plan-numvfs-drains grep -q "^verdict: drain first: \[$PFA: numVfs 4 -> 6 destroys its VFs while VFs $VF1 are in use\]" "$W/plan6.out"
OUT=$W/planmtu.yaml spec 4 9000
show "$BIN/sriovctl" plan -f "$W/planmtu.yaml" | tee "$W/planmtu.out"
check daemon:plan-mtu-no-drain grep -q "^verdict: apply without drain" "$W/planmtu.out"
show "$BIN/sriovctl" plan -f "$SPEC" | tee "$W/plansame.out"
check daemon:plan-same-nothing grep -q "^verdict: nothing to do" "$W/plansame.out"
ip -n pod1 link set "$VF1N" netns 1; ip netns delete pod1
wait_for 10 test -e "$PF/virtfn1/net/$VF1N"

heading "numVfs 4 -> 6"
n=$(syncs); spec 6; wait_sync "$n"; echo "$(last_sync)"
check_eq daemon:grow-succeeded "sync: Succeeded" "$(last_sync | cut -d' ' -f1-2)"
check_eq daemon:numvfs-6 6 "$(cat "$PF/sriov_numvfs")"
check_eq daemon:grow-vf3-vfio vfio-pci "$(vf_drv 3)"
check_eq daemon:grow-vf5-igbvf igbvf "$(vf_drv 5)"

heading "MTU: PF 9000, VF group 0-2 2000"
n=$(syncs); spec 6 9000 2000; wait_sync "$n"; echo "$(last_sync)"
check_eq daemon:mtu-succeeded "sync: Succeeded" "$(last_sync | cut -d' ' -f1-2)"
check_eq daemon:pf-mtu 9000 "$(cat "/sys/class/net/$PFN/mtu")"
check_eq daemon:vf0-mtu 2000 "$(cat "$PF"/virtfn0/net/*/mtu)"
check_eq daemon:mtu-vfs-kept 6 "$(cat "$PF/sriov_numvfs")"

heading "bad specs: Failed naming PF and field, nothing changed"
for bad in "8|numVfs 8" "4|vfGroups[1].deviceType"; do
  nv=${bad%%|*}; want=${bad#*|}
  n=$(syncs)
  if [ "$want" = "numVfs 8" ]; then spec 8 9000 2000; else spec 4 9000 2000 uio-magic; fi
  wait_sync "$n"; echo "$(last_sync)"
  check_eq "daemon:bad-$nv-failed" "sync: Failed" "$(last_sync | cut -d' ' -f1-2)"
  check "daemon:bad-$nv-names-pf" status_has "$PFA"
  check "daemon:bad-$nv-names-field" grep -qF "$want" "$STATUS"
  check_eq "daemon:bad-$nv-untouched" 6 "$(cat "$PF/sriov_numvfs")"
done
grep -o '"lastSyncError": "[^"]*"' "$STATUS"

heading "kill -9 in the middle of an apply, restart: same end state"
n=$(syncs); spec 5 9000 2000
# the state file marks an apply in progress right before the first host write
wait_for 60 grep -q inProgress "$W/state/last-applied.json"
usleep 300000
kill -9 $PID; wait $PID 2>/dev/null
echo "killed at: numvfs=$(cat "$PF/sriov_numvfs") vf3=$(vf_drv 3)"
check daemon:killed-mid-apply grep -q inProgress "$W/state/last-applied.json"
n=$(syncs); start; wait_sync "$n"; echo "$(last_sync)"
check_eq daemon:resume-succeeded "sync: Succeeded" "$(last_sync | cut -d' ' -f1-2)"
check_eq daemon:resume-numvfs-5 5 "$(cat "$PF/sriov_numvfs")"
check_eq daemon:resume-vf3-vfio vfio-pci "$(vf_drv 3)"
check_eq daemon:resume-vf0-mtu 2000 "$(cat "$PF"/virtfn0/net/*/mtu)"
check daemon:resume-state-clean sh -c "! grep -q inProgress '$W/state/last-applied.json'"

heading "PF removed from the spec: reset to 0 VFs"
n=$(syncs)
printf 'apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetworkNodeState\nmetadata: {name: lab}\nspec: {}\n' >"$SPEC.tmp"
mv "$SPEC.tmp" "$SPEC"
wait_sync "$n"; echo "$(last_sync)"
check_eq daemon:removed-succeeded "sync: Succeeded" "$(last_sync | cut -d' ' -f1-2)"
check_eq daemon:removed-numvfs-0 0 "$(cat "$PF/sriov_numvfs")"

heading "netdevsim: e-switch mode switchdev applied and reported"
if modprobe netdevsim 2>/dev/null && echo "10 1" >/sys/bus/netdevsim/new_device; then
  wait_for 10 test -d /sys/bus/netdevsim/devices/netdevsim10/net
  cat >"$SPEC.tmp" <<YAML
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodeState
metadata: {name: lab, generation: 50}
spec:
  interfaces:
  - {pciAddress: "fffe:00:0a.0", numVfs: 4, eSwitchMode: switchdev}
YAML
  n=$(syncs); mv "$SPEC.tmp" "$SPEC"; wait_sync "$n"; echo "$(last_sync)"
  check_eq daemon:nsim-succeeded "sync: Succeeded" "$(last_sync | cut -d' ' -f1-2)"
  check_eq daemon:nsim-numvfs-4 4 "$(cat /sys/bus/netdevsim/devices/netdevsim10/sriov_numvfs)"
  show devlink dev eswitch show netdevsim/netdevsim10
  check daemon:nsim-switchdev sh -c "devlink dev eswitch show netdevsim/netdevsim10 | grep -q 'mode switchdev'"
  check daemon:nsim-status-switchdev in_status '"eSwitchMode": "switchdev"'
  check daemon:nsim-status-numvfs in_status '"pciAddress": "fffe:00:0a.0"'
  sed -i 's/switchdev/legacy/' "$SPEC"; n=$(syncs); touch "$SPEC"; wait_sync "$n"; echo "$(last_sync)"
  check daemon:nsim-legacy sh -c "devlink dev eswitch show netdevsim/netdevsim10 | grep -q 'mode legacy'"
else
  fail daemon:nsim "netdevsim module not available"
fi

RSS=$(awk '/^VmHWM/{print $2}' "/proc/$PID/status")
echo "daemon peak RSS: ${RSS} kB (target <= 15360 kB)"
check daemon:rss-le-15MiB test "$RSS" -le 15360
kill -TERM $PID; wait $PID
cp "$LOG" "$LAB_OUT/20-daemon.log" 2>/dev/null
echo 1500 >"/sys/class/net/$PFN/mtu"
exit $((LAB_FAILS > 0))
