#!/bin/bash
# Demo section: the node's SR-IOV hardware as `sriovctl discover` shows it, on the lab's emulated
# Intel 82576, before and after VFs are created, and with one VF handed to vfio-pci.
. "$(dirname "$0")/../tests/lib.sh"

PF=$(lab_igb_pf 0) || { echo "FAIL demo:discover: no Intel 82576 (8086:10c9) in the guest"; exit 1; }
heading "At boot: an Intel 82576 (QEMU igb) on the igb driver, SR-IOV capable, no VFs yet"
show "$BIN/sriovctl" discover || exit 1

heading "Creating 4 VFs, as the config daemon will: echo 4 > $PF/sriov_numvfs"
lab_set_numvfs "$PF" 4 || { echo "FAIL demo:discover: the 4 VFs did not come up"; exit 1; }
heading "After: 4 VFs on igbvf, each with its netdev and its own IOMMU group"
show "$BIN/sriovctl" discover || exit 1

VF3=$(basename "$(readlink "$PF/virtfn3")")
heading "VF 3 ($VF3) handed to vfio-pci (for DPDK or a VM): its netdev goes, /dev/vfio/N comes"
lab_bind "$VF3" vfio-pci || { echo "FAIL demo:discover: vfio-pci bind of $VF3"; exit 1; }
show "$BIN/sriovctl" discover || exit 1

heading "The same in the SriovNetworkNodeState status shape (first lines)"
"$BIN/sriovctl" discover -o json >/tmp/discover.json || exit 1
echo "\$ $BIN/sriovctl discover -o json | head -30"
head -30 /tmp/discover.json
echo "..."
