#!/bin/bash
# Issue 2 in the lab: host discovery, the igb fixture and `sriovctl discover` on the real igb /
# igbvf / vfio-pci drivers (crates/host/tests/lab_igb.rs), then what a user sees of
# `sriovctl discover` before and after VFs exist.
. "$(dirname "$0")/lib.sh"

lab_cargo_test lab_igb

PF=$(lab_igb_pf 0) || { fail host:igb-pf "no 8086:10c9 PF"; exit 1; }
PFA=${PF##*/}
if [ ! -x "$BIN/sriovctl" ]; then fail host:sriovctl-built "$BIN/sriovctl missing"; exit 1; fi
out=$("$BIN/sriovctl" discover 2>&1); rc=$?
echo "$out"
check_eq host:sriovctl-discover-exit 0 "$rc"
check host:table-shows-igb-pf grep -q "$PFA.*igb" <<<"$out"
lab_set_numvfs "$PF" 2 || fail host:numvfs-2 "VFs did not appear"
out=$("$BIN/sriovctl" discover 2>&1)
echo "$out"
for i in 0 1; do
  vf=$(basename "$(readlink "$PF/virtfn$i")")
  check "host:table-shows-vf$i" grep -q "$vf.*igbvf" <<<"$out"
done
json=$("$BIN/sriovctl" discover -o json 2>&1)
check host:json-numvfs grep -q '"numVfs": *2' <<<"$json"
check host:json-vfid grep -q '"vfID": *1' <<<"$json"
