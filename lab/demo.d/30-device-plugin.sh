#!/bin/bash
# Demo section: the pools sriovdp advertises on the lab's real igb VFs, as a kubelet sees them
# (a fake kubelet speaking the real device-plugin protocol), and `sriovctl explain`.
. "$(dirname "$0")/../tests/lib.sh"

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
  {"resourceName":"intel_sriov_dpdk","selectors":[{"drivers":["vfio-pci"],"pfNames":["$PFN#0-6"]}]},
  {"resourceName":"intel_sriov_first_two","selectors":[{"pfNames":["$PFN#0-1"]}]}
]}
JSON
heading "The device plugin config (upstream's format, unchanged)"
cat "$cfg"

heading "sriovctl explain: which pool takes each device, and why not the others"
show "$BIN/sriovctl" explain --config "$cfg"

heading "sriovdp against a kubelet (the real v1beta1 protocol): what the kubelet is told"
show "$BIN/sriovdp-fake-kubelet" --sriovdp "$BIN/sriovdp" --config "$cfg" || { echo "FAIL demo:device-plugin"; exit 1; }
