#!/bin/bash
# Issue 4 in the lab: the sriov CNI plugin on real igb VFs (crates/cni/tests/lab_cni.rs):
# PF-side settings as `ip -j link show` lists them, VF in the pod netns with MAC and a host-local
# IP, VF-to-VF ping, DEL restore, DPDK mode on vfio-pci, igb-refused settings rolled back, and a
# pod netns that dies with the VF inside.
. "$(dirname "$0")/lib.sh"
[ -x "$REPO/.tools/cni-bin/host-local" ] || { fail cni:host-local "$REPO/.tools/cni-bin/host-local missing (scripts/deps/30-cni.sh)"; exit 1; }
lab_cargo_test lab_cni || true
cat "$LAB_OUT/cni-latency.txt" 2>/dev/null
exit "$LAB_FAILS"
