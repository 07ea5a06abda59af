#!/bin/bash
# The lab itself: the devices, drivers and tools every other lab test relies on are there, and
# the shell helpers of lib.sh do what they say (VFs up and down, vfio-pci bind and back).
. "$(dirname "$0")/lib.sh"

check smoke:repo-shared test -f "$REPO/Cargo.toml"
check smoke:binaries-shared test -d "$BIN"
PF=$(lab_igb_pf 0) || true
check smoke:igb-pf-present test -n "$PF"
[ -n "$PF" ] || exit 1
check_eq smoke:igb-pf-driver igb "$(basename "$(readlink "$PF/driver")")"
check_eq smoke:igb-totalvfs 7 "$(cat "$PF/sriov_totalvfs")"
check_eq smoke:igb-numvfs-at-boot 0 "$(cat "$PF/sriov_numvfs")"
check smoke:igb-pf-netdev test -n "$(ls "$PF/net" 2>/dev/null)"
check smoke:iommu-groups test -L "$PF/iommu_group"
check smoke:netdevsim-module modinfo -F filename netdevsim
check smoke:vfio-pci-module modinfo -F filename vfio-pci

# lib.sh helpers against the real driver
if lab_set_numvfs "$PF" 2; then pass smoke:set-numvfs-2; else fail smoke:set-numvfs-2 "VFs or their netdevs did not appear"; fi
check_eq smoke:vf-netdevs 2 "$(lab_vf_netdevs "$PF")"
VF1=$(basename "$(readlink -f "$PF/virtfn1")")
check smoke:vf-to-vfio lab_bind "$VF1" vfio-pci
G=$(basename "$(readlink "/sys/bus/pci/devices/$VF1/iommu_group")")
check smoke:dev-vfio-node test -c "/dev/vfio/$G"
check smoke:vf-back-to-igbvf lab_bind "$VF1" ""
check_eq smoke:vf-driver-restored igbvf "$(basename "$(readlink "/sys/bus/pci/devices/$VF1/driver")")"
check smoke:numvfs-0 lab_set_numvfs "$PF" 0
check smoke:no-virtfn-left test ! -e "$PF/virtfn0"
# the teardown trap: leave VFs behind on purpose, lab_teardown (EXIT) must remove them
lab_set_numvfs "$PF" 1 || fail smoke:set-numvfs-1
