#!/bin/sh
# The lab's built-in SR-IOV facts test (run-lab.sh with no TEST): prints every command and its
# exact output, PASS/FAIL for hard requirements, INFO for what the driver accepts or rejects.
# Its output is the evidence behind docs/lab.md and ../shared/lab/NOTES.md; it leaves the NIC as found.
PASS=0; FAIL=0; SKIP=0
ok()   { PASS=$((PASS+1)); echo "PASS: $*"; }
bad()  { FAIL=$((FAIL+1)); echo "FAIL: $*"; }
skip() { SKIP=$((SKIP+1)); echo "SKIP: $*"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
run()  { echo "\$ $*"; "$@" 2>&1; r=$?; [ $r -eq 0 ] || echo "(exit $r)"; return $r; }
sh_run() { echo "\$ $1"; sh -c "$1" 2>&1; r=$?; [ $r -eq 0 ] || echo "(exit $r)"; return $r; }
info_try() { d=$1; shift; if run "$@"; then echo "INFO: ACCEPTED  $d"; else echo "INFO: REJECTED  $d"; fi; }
wait_until() { n=$1; shift; i=0; while ! sh -c "$*" 2>/dev/null; do i=$((i+1)); [ $i -ge $n ] && return 1; usleep 100000; done; return 0; }
attr() { printf '%-28s %s\n' "$(basename "$1")" "$(cat "$1" 2>&1)"; }
t0=$(cut -d' ' -f1 /proc/uptime)
section() { echo; echo "=== $* (t=$(cut -d' ' -f1 /proc/uptime)s)"; }

section environment
run uname -r
run cat /proc/cmdline
echo "accel: $LAB_ACCEL"
run sh -c 'dmesg | grep -iE "DMAR: (IOMMU enabled|Intel\(R\) Virtualization)|iommu: Default domain" | head -5'
echo "iommu groups: $(ls /sys/kernel/iommu_groups 2>/dev/null | wc -l)"
run lspci -nn

section "PF (igb, Intel 82576)"
PF=""
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor)" = 0x8086 ] && [ "$(cat $d/device)" = 0x10c9 ] && { PF=$d; break; }
done
check "igb PF found (8086:10c9)" [ -n "$PF" ]
[ -n "$PF" ] || { echo "$PASS passed, $FAIL failed, $SKIP skipped"; exit 1; }
wait_until 100 "ls $PF/net/ >/dev/null 2>&1"
PFBDF=$(basename "$PF")
echo "PF sysfs: $(readlink -f $PF)"
for a in vendor device subsystem_vendor subsystem_device class sriov_totalvfs sriov_numvfs sriov_offset sriov_stride sriov_vf_device sriov_drivers_autoprobe sriov_vf_total_msix numa_node; do attr $PF/$a; done
echo "driver -> $(readlink $PF/driver)"
echo "iommu_group -> $(readlink $PF/iommu_group)"
PFNET=$(ls $PF/net | head -1)
echo "PF netdev: $PFNET  (/sys/class/net/$PFNET -> $(readlink /sys/class/net/$PFNET))"
check "PF bound to igb" [ "$(basename "$(readlink $PF/driver)")" = igb ]
check "PF has a netdev" [ -n "$PFNET" ]
TOTAL=$(cat $PF/sriov_totalvfs)
check "sriov_totalvfs >= 4 (is $TOTAL)" [ "$TOTAL" -ge 4 ]
run ethtool -i $PFNET
run ip link set dev $PFNET up
wait_until 100 "[ \"\$(cat /sys/class/net/$PFNET/carrier)\" = 1 ]" && echo "PF carrier up" || echo "PF carrier still down"
run cat /sys/class/net/$PFNET/operstate /sys/class/net/$PFNET/speed

section "create 4 VFs"
ts=$(cut -d' ' -f1 /proc/uptime)
run sh -c "echo 4 > $PF/sriov_numvfs"
check "sriov_numvfs reads 4" [ "$(cat $PF/sriov_numvfs)" = 4 ]
check "virtfn0..3 links exist" [ -L $PF/virtfn0 -a -L $PF/virtfn1 -a -L $PF/virtfn2 -a -L $PF/virtfn3 ]
wait_until 300 "[ \$(ls -d $PF/virtfn*/net/* 2>/dev/null | wc -l) -ge 4 ]"
te=$(cut -d' ' -f1 /proc/uptime)
echo "VF netdevs present after $(awk -v a=$ts -v b=$te 'BEGIN{print b-a}')s"
run sh -c "ls -l $PF/ | grep virtfn"
for i in 0 1 2 3; do
  vf=$(readlink -f $PF/virtfn$i)
  echo "--- virtfn$i -> $(readlink $PF/virtfn$i) ($vf)"
  for a in vendor device class; do attr $vf/$a; done
  echo "physfn -> $(readlink $vf/physfn)"
  echo "driver -> $(readlink $vf/driver)"
  echo "iommu_group -> $(readlink $vf/iommu_group)"
  echo "net: $(ls $vf/net 2>/dev/null)"
done
VF0=$(readlink -f $PF/virtfn0); VF1=$(readlink -f $PF/virtfn1); VF2=$(readlink -f $PF/virtfn2); VF3=$(readlink -f $PF/virtfn3)
check "VF ids 8086:10ca" [ "$(cat $VF0/vendor):$(cat $VF0/device)" = 0x8086:0x10ca ]
check "physfn points back to the PF" [ "$(readlink -f $VF0/physfn)" = "$(readlink -f $PF)" ]
check "VFs bound to igbvf" [ "$(basename "$(readlink $VF0/driver)")" = igbvf -a "$(basename "$(readlink $VF3/driver)")" = igbvf ]
V0=$(ls $VF0/net 2>/dev/null); V1=$(ls $VF1/net 2>/dev/null); V2=$(ls $VF2/net 2>/dev/null); V3=$(ls $VF3/net 2>/dev/null)
check "VF netdevs exist ($V0 $V1 $V2 $V3)" [ -n "$V0" -a -n "$V1" -a -n "$V2" -a -n "$V3" ]
run ethtool -i $V0
echo "/sys/class/net/$V0/device/physfn -> $(readlink /sys/class/net/$V0/device/physfn)"
for n in $PFNET $V0; do for a in phys_port_name phys_switch_id phys_port_id dev_port; do printf '%s/%s: %s\n' $n $a "$(cat /sys/class/net/$n/$a 2>&1)"; done; done
sh_run "echo 2 > $PF/sriov_numvfs" && echo "INFO: 4->2 without going through 0 ACCEPTED" || echo "INFO: 4->2 without going through 0 REJECTED (must write 0 first)"
sh_run "echo $((TOTAL+1)) > $PF/sriov_numvfs" && echo "INFO: numvfs > totalvfs ACCEPTED" || echo "INFO: numvfs > totalvfs REJECTED"

section "VF config through the PF (ip link set $PFNET vf N ...)"
echo "VF0 netdev MAC before: $(cat /sys/class/net/$V0/address)"
if run ip link set $PFNET vf 0 mac 02:11:22:33:44:55; then ok "vf 0 mac"; else bad "vf 0 mac"; fi
if run ip link set $PFNET vf 0 vlan 100; then ok "vf 0 vlan 100"; else bad "vf 0 vlan 100"; fi
info_try "vf 0 vlan 100 qos 3" ip link set $PFNET vf 0 vlan 100 qos 3
info_try "vf 0 vlan 100 proto 802.1ad" ip link set $PFNET vf 0 vlan 100 proto 802.1ad
if run ip link set $PFNET vf 0 spoofchk off; then ok "vf 0 spoofchk off"; else bad "vf 0 spoofchk off"; fi
if run ip link set $PFNET vf 0 trust on; then ok "vf 0 trust on"; else bad "vf 0 trust on"; fi
info_try "vf 0 max_tx_rate 100" ip link set $PFNET vf 0 max_tx_rate 100
info_try "vf 0 min_tx_rate 10" ip link set $PFNET vf 0 min_tx_rate 10
info_try "vf 0 rate 100 (legacy)" ip link set $PFNET vf 0 rate 100
info_try "vf 0 state enable" ip link set $PFNET vf 0 state enable
info_try "vf 0 state auto" ip link set $PFNET vf 0 state auto
info_try "vf 0 query_rss on" ip link set $PFNET vf 0 query_rss on
run ip link show dev $PFNET
run ip -d link show dev $PFNET
run ip -j link show dev $PFNET
ip link show dev $PFNET | grep -q 'vf 0 .*02:11:22:33:44:55' && ok "ip link shows vf 0 MAC" || bad "ip link shows vf 0 MAC"
ip link show dev $PFNET | grep -q 'vf 0 .*vlan 100' && ok "ip link shows vf 0 vlan 100" || bad "ip link shows vf 0 vlan 100"
ip link show dev $PFNET | grep -q 'vf 0 .*spoof checking off' && ok "ip link shows spoof checking off" || bad "ip link shows spoof checking off"
ip link show dev $PFNET | grep -q 'vf 0 .*trust on' && ok "ip link shows trust on" || bad "ip link shows trust on"
echo "VF0 netdev MAC after (no VF driver reload): $(cat /sys/class/net/$V0/address)"
run ip link set dev $V0 up; usleep 500000
echo "VF0 netdev MAC after link up: $(cat /sys/class/net/$V0/address)"
# what a CNI does next: set the VF netdev's own MAC (allowed only to the admin MAC), or rebind the VF driver
info_try "VF netdev sets a MAC other than the admin MAC" ip link set dev $V0 address 02:11:22:33:44:66
info_try "VF netdev sets the admin MAC itself" ip link set dev $V0 address 02:11:22:33:44:55
echo "VF0 netdev MAC now: $(cat /sys/class/net/$V0/address)"
BDF0=$(basename $VF0)
run sh -c "echo $BDF0 > /sys/bus/pci/drivers/igbvf/unbind; echo $BDF0 > /sys/bus/pci/drivers/igbvf/bind"
wait_until 50 "ls $VF0/net/ >/dev/null 2>&1"; V0=$(ls $VF0/net 2>/dev/null)
echo "VF0 netdev after igbvf rebind: $V0 MAC $(cat /sys/class/net/$V0/address)"
[ "$(cat /sys/class/net/$V0/address)" = 02:11:22:33:44:55 ] && ok "VF0 netdev carries the admin MAC after rebind" || bad "VF0 netdev carries the admin MAC after rebind"
info_try "vf 0 vlan 0 (clear)" ip link set $PFNET vf 0 vlan 0
info_try "vf 0 mac 00:00:00:00:00:00 (clear)" ip link set $PFNET vf 0 mac 00:00:00:00:00:00
info_try "vf 0 max_tx_rate 0 (clear)" ip link set $PFNET vf 0 max_tx_rate 0
run sh -c "ip link show dev $PFNET | grep 'vf 0'"
run sh -c "dmesg | grep -iE 'igb|igbvf' | tail -15"

section "VF netdev into a network namespace"
run ip netns add lab1
run ip netns add lab2
if run ip link set dev $V1 netns lab1 && run ip -n lab1 link set dev $V1 name net1; then ok "move $V1 to netns lab1 and rename to net1"; else bad "move/rename VF in netns"; fi
run ip -n lab1 link show
check "$V1 gone from the root netns" [ ! -e /sys/class/net/$V1 ]
run ip netns exec lab1 sh -c 'ls /sys/class/net; readlink /sys/class/net/net1/device'
# VF<->VF traffic through the emulated NIC's internal switch (link-local addresses, inside this VM only)
run ip link set dev $V2 netns lab2; run ip -n lab2 link set dev $V2 name net1
run ip -n lab1 addr add 169.254.10.1/24 dev net1; run ip -n lab2 addr add 169.254.10.2/24 dev net1
run ip -n lab1 link set net1 up; run ip -n lab2 link set net1 up; sleep 2
if run ip netns exec lab1 ping -c 3 -W 2 169.254.10.2; then echo "INFO: VF1 <-> VF2 ping through emulated igb WORKS"; else echo "INFO: VF1 <-> VF2 ping through emulated igb does NOT work"; fi
run ip -n lab1 -s link show net1
# back to the root netns (netns 1 = PID 1's netns) with the original name
if run ip -n lab1 link set dev net1 netns 1 && run ip link set dev net1 name $V1; then ok "VF moved back and renamed"; else bad "VF moved back"; fi
run ip -n lab2 link set dev net1 netns 1; run ip link set dev net1 name $V2
run ip netns del lab1; run ip netns del lab2

section "VF -> vfio-pci (driver_override)"
BDF3=$(basename $VF3); G=$(basename "$(readlink $VF3/iommu_group)" 2>/dev/null)
echo "VF3 $BDF3 iommu_group=$G devices in group: $(ls /sys/kernel/iommu_groups/$G/devices 2>/dev/null | tr '\n' ' ')"
run modprobe vfio-pci
run sh -c "echo vfio-pci > $VF3/driver_override"
run sh -c "echo $BDF3 > $VF3/driver/unbind"
run sh -c "echo $BDF3 > /sys/bus/pci/drivers_probe"
echo "driver -> $(readlink $VF3/driver)"
run ls -l /dev/vfio/
if [ -z "$G" ]; then skip "vfio-pci bind (no IOMMU group; boot with LAB_IOMMU=1)"
else
  check "VF3 bound to vfio-pci" [ "$(basename "$(readlink $VF3/driver)")" = vfio-pci ]
  check "/dev/vfio/$G is a char device" [ -c /dev/vfio/$G ]
  check "VF3 netdev gone" [ ! -e /sys/class/net/$V3 ]
fi
run cat /proc/modules
run sh -c "echo $BDF3 > /sys/bus/pci/drivers/vfio-pci/unbind"
run sh -c "echo > $VF3/driver_override"
run sh -c "echo $BDF3 > /sys/bus/pci/drivers_probe"
wait_until 50 "ls $VF3/net/ >/dev/null 2>&1"
check "VF3 back on igbvf" [ "$(basename "$(readlink $VF3/driver)")" = igbvf ]

section "netdevsim SR-IOV"
if run modprobe netdevsim; then
  run sh -c 'echo "10 1" > /sys/bus/netdevsim/new_device'
  D=/sys/bus/netdevsim/devices/netdevsim10
  wait_until 50 "ls $D/net/ >/dev/null 2>&1"
  run ls $D $D/net
  N=$(ls $D/net | head -1)
  echo "netdevsim port netdev: $N -> $(readlink /sys/class/net/$N)"
  echo "device -> $(readlink /sys/class/net/$N/device)"
  for a in phys_port_name phys_switch_id; do printf '%s: %s\n' $a "$(cat /sys/class/net/$N/$a 2>&1)"; done
  attr $D/sriov_numvfs
  echo "debugfs max_vfs: $(cat /sys/kernel/debug/netdevsim/netdevsim10/max_vfs 2>&1)"
  run sh -c "echo 4 > $D/sriov_numvfs"
  check "netdevsim sriov_numvfs=4" [ "$(cat $D/sriov_numvfs)" = 4 ]
  if run ip link set $N vf 0 mac 02:aa:bb:cc:dd:00; then ok "netdevsim vf 0 mac"; else bad "netdevsim vf 0 mac"; fi
  if run ip link set $N vf 0 vlan 200 qos 2; then ok "netdevsim vf 0 vlan"; else bad "netdevsim vf 0 vlan"; fi
  info_try "nsim vf 0 spoofchk off" ip link set $N vf 0 spoofchk off
  info_try "nsim vf 0 trust on" ip link set $N vf 0 trust on
  info_try "nsim vf 0 max_tx_rate 100 min_tx_rate 10" ip link set $N vf 0 max_tx_rate 100 min_tx_rate 10
  info_try "nsim vf 0 state disable" ip link set $N vf 0 state disable
  info_try "nsim vf 0 query_rss on" ip link set $N vf 0 query_rss on
  info_try "nsim vf 1 vlan 300 proto 802.1ad" ip link set $N vf 1 vlan 300 proto 802.1ad
  info_try "nsim vf 4 mac (out of range)" ip link set $N vf 4 mac 02:aa:bb:cc:dd:04
  run ip link show dev $N
  ip link show dev $N | grep -q 'vf 0 .*02:aa:bb:cc:dd:00' && ok "ip link shows nsim vf 0 MAC" || bad "ip link shows nsim vf 0 MAC"
  run devlink dev
  run devlink dev eswitch show netdevsim/netdevsim10
  info_try "devlink eswitch mode switchdev (with 4 VFs)" devlink dev eswitch set netdevsim/netdevsim10 mode switchdev
  run devlink port show
  run ip -br link
  info_try "devlink eswitch mode legacy" devlink dev eswitch set netdevsim/netdevsim10 mode legacy
  run sh -c "echo 0 > $D/sriov_numvfs"
  check "netdevsim sriov_numvfs back to 0" [ "$(cat $D/sriov_numvfs)" = 0 ]
  run sh -c 'echo 10 > /sys/bus/netdevsim/del_device'
else
  skip "netdevsim module not available"
fi

section "second SR-IOV device type: QEMU NVMe (1b36:0010)"
NV=""
for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = 0x1b36 ] && [ "$(cat $d/device)" = 0x0010 ] && NV=$d; done
if [ -n "$NV" ] && [ -e $NV/sriov_totalvfs ]; then
  for a in sriov_totalvfs sriov_offset sriov_stride sriov_vf_device; do attr $NV/$a; done
  echo "driver -> $(readlink $NV/driver)"
  run sh -c "echo 0 > $NV/sriov_drivers_autoprobe"   # VFs have no queues until nvme virt-mgmt assigns some
  run sh -c "echo 2 > $NV/sriov_numvfs"
  run sh -c "ls -l $NV/ | grep virtfn"
  for l in $NV/virtfn*; do v=$(readlink -f $l); echo "$(basename $l): $(basename $v) $(cat $v/vendor):$(cat $v/device) driver=$(basename "$(readlink $v/driver 2>/dev/null)" 2>/dev/null)"; done
  echo "INFO: nvme VFs created: $(ls -d $NV/virtfn* 2>/dev/null | wc -l)"
  run sh -c "echo 0 > $NV/sriov_numvfs"
else
  skip "no SR-IOV NVMe controller (LAB_NVME=0?)"
fi

section "sriov_numvfs back to 0 (igb)"
run sh -c "echo 0 > $PF/sriov_numvfs"
check "igb sriov_numvfs reads 0" [ "$(cat $PF/sriov_numvfs)" = 0 ]
check "no virtfn links left" [ -z "$(ls -d $PF/virtfn* 2>/dev/null)" ]
check "VF netdevs gone" [ ! -e /sys/class/net/$V0 -a ! -e /sys/class/net/$V3 ]
run ip link show dev $PFNET
check "no vf lines on the PF" [ -z "$(ip link show dev $PFNET | grep ' vf ')" ]

t1=$(cut -d' ' -f1 /proc/uptime)
echo
echo "test body took $(awk -v a=$t0 -v b=$t1 'BEGIN{print b-a}')s (guest clock)"
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ $FAIL -eq 0 ]
