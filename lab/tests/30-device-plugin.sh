#!/bin/bash
# Issue 3 in the lab: the sriovdp device plugin on the real igb VFs (crates/device-plugin/tests/
# lab_device_plugin.rs): 4 VFs, VF0-2 on igbvf, VF3 on vfio-pci; the fake kubelet sees both pools
# with the right counts, the vfio specs name the guest's real /dev/vfio/N, and the PF link going
# down turns the VFs Unhealthy. Then `sriovctl explain` on the same host.
. "$(dirname "$0")/lib.sh"

PF=$(lab_igb_pf 0) || { fail dp:igb-pf "no 8086:10c9 PF"; exit 1; }
PFA=${PF##*/}
PFN=$(ls "$PF/net" | head -1)
[ -x "$BIN/sriovdp" ] || { fail dp:sriovdp-built "$BIN/sriovdp missing"; exit 1; }
lab_set_numvfs "$PF" 4 || { fail dp:numvfs-4 "VFs did not appear"; exit 1; }
ip link set "$PFN" up
wait_for 10 grep -qx up "/sys/class/net/$PFN/operstate" || fail dp:pf-up "$PFN has no carrier"
VF3=$(basename "$(readlink "$PF/virtfn3")")
VFIO=0
if lab_bind "$VF3" vfio-pci; then VFIO=1; else echo "SKIP dp:vfio: vfio-pci bind of $VF3 failed (no IOMMU?)"; fi

rm -f "$LAB_OUT/device-plugin.txt"
SRIOVDP_BIN="$BIN/sriovdp" LAB_DP_PF="$PFA" LAB_DP_VFIO="$VFIO" lab_cargo_test lab_device_plugin sriovdp_on_real_igb_vfs || true
cat "$LAB_OUT/device-plugin.txt" 2>/dev/null

# sriovctl explain: a resource whose count is 0, and why.
cfg=$(mktemp)
cat >"$cfg" <<JSON
{"resourceList":[{"resourceName":"dpdk","selectors":{"drivers":["vfio-pci"],"pfNames":["$PFN#0-2"]}},
                 {"resourceName":"igbvf","selectors":{"drivers":["igbvf"]}}]}
JSON
out=$("$BIN/sriovctl" explain --config "$cfg" 2>&1); rc=$?
echo "$out"
check_eq dp:explain-exit 0 "$rc"
check dp:explain-zero-pool grep -q "intel.com/dpdk .* 0 devices" <<<"$out"
if [ "$VFIO" = 1 ]; then
  check dp:explain-range-reason grep -q "pfNames: $PFN function 3 not in \"$PFN#0-2\"" <<<"$out"
fi
check dp:explain-driver-reason grep -q "drivers: igbvf not in \[vfio-pci\]" <<<"$out"
rm -f "$cfg"
exit "$LAB_FAILS"
