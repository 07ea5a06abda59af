#!/usr/bin/env bash
# run-lab.sh - the sriov-rs SR-IOV lab: a real Linux SR-IOV stack without SR-IOV hardware.
#
# Boots a stock Debian kernel under QEMU (q35 + emulated intel-iommu) with an emulated Intel
# 82576 NIC (QEMU "igb": PF driver igb, VFs on igbvf, vfio-pci with one IOMMU group per VF), an
# emulated SR-IOV NVMe controller and an out-of-tree netdevsim (Debian does not ship it; it
# gives e-switch switchdev mode). A small initramfs (busybox + bash + iproute2 + kmod + glibc)
# boots, mounts the per-run directory over 9p at /lab (and LAB_SHARE at /mnt/host), runs one
# test program as root, writes its output back over 9p and powers off. Everything it needs is
# installed from Debian packages (QEMU >= 8 and the kernel from bookworm-backports), idempotently.
# docs/lab.md explains the design, the timings and how to add lab tests; lab/run-tests and
# lab/demo are the two users of this script.
#
# Usage:
#   run-lab.sh [TEST [ARGS...]]   boot, run TEST in the guest, exit with its status
#     TEST  an executable (script or glibc/static binary) run as root in the guest.
#           Default: lab/lib/sriov-facts.sh, the SR-IOV facts test (igb, vfio, netdevsim, nvme).
#   run-lab.sh --prepare          only install packages and build netdevsim + the initramfs
#                                 (what scripts/deps/10-lab.sh runs; no boot)
#   Exit status: the test's exit status; 2 if the guest never reported a result (boot
#   failure, timeout); 3 for a setup error on the host.
#
# Environment knobs:
#   LAB_DIR=~/.cache/sriov-lab  cache (debs, netdevsim build, initramfs) and runs/<id>/
#   LAB_RUN=<dir>            run directory to use instead of a new $LAB_DIR/runs/<id>; it may hold
#                            files for the guest (it is /lab there), but no out/ of an earlier run
#   ACCEL=auto|kvm|tcg       auto = KVM only with kvm_intel/kvm_amd loaded, else TCG (the KVM of
#                            the build machines, kvm_pvm, cannot boot a stock kernel)
#   KVER=<uname -r>          kernel to boot (default: what linux-image-amd64 depends on,
#                            installing linux-image-amd64 from bookworm-backports if missing)
#   LAB_SHARE=<dir>          host dir exported read-write over 9p at /mnt/host (lab/run-tests and
#                            lab/demo share the repo root, so target/debug/* runs in the guest)
#   LAB_MEM=2048 LAB_SMP=2   guest memory (MiB) / vCPUs
#   LAB_CPU=host|max         QEMU -cpu model (default: host with KVM, max with TCG)
#   LAB_TCG_THREAD=single    TCG vCPU threads: single (one host thread for all vCPUs) or multi.
#                            multi crashed QEMU 10.0.2 (iotlb_to_section assertion) and hung the
#                            guest (vCPU never scheduled, RCU stalls) on a loaded 2-core host
#   LAB_TIMEOUT=900          wall-clock limit for the guest (seconds)
#   LAB_BOOT_TIMEOUT=180     stop early if the guest has not reached its test by then
#   LAB_IOMMU=1              0 = no intel-iommu (then vfio-pci cannot bind: no IOMMU groups)
#   LAB_NVME=1               0 = no SR-IOV NVMe controller
#   LAB_IGB_COUNT=1          number of igb PFs, each behind its own pcie-root-port, all on one
#                            QEMU hub (so traffic can cross between PFs)
#   LAB_EXTRA_MODULES=""     extra kernel modules for the initramfs
#   LAB_APISERVER_PORT=<p>   a virtio NIC on QEMU's user network, restricted (restrict=on: the guest
#                            reaches nothing) but for one forward: guest 10.0.2.100:443 -> host
#                            127.0.0.1:<p>, one socat per connection (a kube-apiserver on the
#                            host's loopback for a real kubelet in the guest; lab/demo uses it)
#   LAB_INTERACTIVE=0        1 = a guest bash on the serial console after the test (poweroff -f)
#   LAB_QUIET=0              1 = do not echo the guest console (it is in <run>/console.log)
#
# In the guest: /lab = the run dir (rw), /lab/out = artifacts (back on the host as <run>/out),
# /mnt/host = LAB_SHARE, env LAB_OUT=/lab/out LAB_ACCEL=kvm|tcg. Tools: busybox applets, bash
# (/bin/sh), iproute2 (ip, devlink, bridge, tc), ethtool, lspci, kmod, strace if the host has
# it, glibc + libgcc_s (dynamically linked Rust binaries built on Debian 12 run as they are).
# Modules are autoloaded on hotplug (busybox uevent -> modprobe $MODALIAS), as udev would.
# Each run dir keeps qemu-cmdline, console.log, test, args and out/ (test.log, rc).
set -euo pipefail

LAB_HOME=$(dirname "$(readlink -f "$0")")

SELF=$(readlink -f "$0")
GUEST_FILES=("$LAB_HOME/lib/guest-init" "$LAB_HOME/lib/lab-hotplug")
LAB_DIR=${LAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sriov-lab}
ACCEL=${ACCEL:-auto}
LAB_MEM=${LAB_MEM:-2048}
LAB_SMP=${LAB_SMP:-2}
LAB_TIMEOUT=${LAB_TIMEOUT:-900}
LAB_BOOT_TIMEOUT=${LAB_BOOT_TIMEOUT:-180}
LAB_IOMMU=${LAB_IOMMU:-1}
LAB_NVME=${LAB_NVME:-1}
LAB_IGB_COUNT=${LAB_IGB_COUNT:-1}
LAB_SHARE=${LAB_SHARE:-}
LAB_EXTRA_MODULES=${LAB_EXTRA_MODULES:-}
LAB_INTERACTIVE=${LAB_INTERACTIVE:-0}
LAB_QUIET=${LAB_QUIET:-0}
LAB_RUN=${LAB_RUN:-}
LAB_TCG_THREAD=${LAB_TCG_THREAD:-single}
LAB_APISERVER_PORT=${LAB_APISERVER_PORT:-}
# kernel modules put into the initramfs (dependencies are resolved with modprobe --show-depends)
LAB_MODULES="igb igbvf vfio vfio-pci vfio_iommu_type1 9pnet_virtio 9p nvme psample veth dummy 8021q bridge macvlan tun virtio_net $LAB_EXTRA_MODULES"

log() { printf '[run-lab] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 3; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, 9p passthrough)"
T_START=$(now)
mkdir -p "$LAB_DIR"/debs "$LAB_DIR"/runs

# ---------------------------------------------------------------------------
# 1. packages (apt only)
# ---------------------------------------------------------------------------
APT_UPDATED=0
apt_update() { [ "$APT_UPDATED" = 1 ] || { log "apt-get update"; apt-get update -qq; APT_UPDATED=1; }; }
apt_install() { apt_update; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# kernel packages of a backports kernel only exist in bookworm-backports and need its linux-base
apt_install_kpkg() {
  . /etc/os-release
  if [ "${VERSION_CODENAME:-}" = bookworm ] && [[ "$1" == *"~bpo"* || "$(apt-cache policy "$1" 2>/dev/null)" == *"~bpo"* ]]; then
    apt_install "$1/bookworm-backports"
  else
    apt_install "$1"
  fi
}

ensure_backports() {
  . /etc/os-release
  [ "${VERSION_CODENAME:-}" = bookworm ] || return 0
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding bookworm-backports to /etc/apt/sources.list.d/backports.sources"
    cat >/etc/apt/sources.list.d/backports.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    APT_UPDATED=0
  fi
}

qemu_ok() {
  command -v qemu-system-x86_64 >/dev/null || return 1
  local major
  major=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
  [ "${major:-0}" -ge 8 ] && qemu-system-x86_64 -device help 2>/dev/null | grep -q '"igb"'
}

ensure_packages() {
  ensure_backports
  local want=()
  for p in busybox-static kmod cpio xz-utils iproute2 ethtool pciutils make socat; do
    have_pkg "$p" || want+=("$p")
  done
  [ ${#want[@]} -eq 0 ] || apt_install "${want[@]}"
  if ! qemu_ok; then
    # QEMU >= 8.0 is needed for the igb device; bookworm has 7.2, bookworm-backports 10.x.
    # "pkg/release" (not -t) so that only what must come from backports does; apt does not
    # pull versioned dependencies from backports by itself, so name those too.
    . /etc/os-release
    if [ "${VERSION_CODENAME:-}" = bookworm ]; then
      apt_install qemu-system-x86/bookworm-backports qemu-system-common/bookworm-backports \
                  qemu-system-data/bookworm-backports seabios/bookworm-backports
    else
      apt_install qemu-system-x86
    fi
    qemu_ok || die "qemu-system-x86_64 >= 8.0 with the igb device is not available"
  fi
}

# Kernel: the flavour linux-image-amd64 depends on.
resolve_kernel() {
  if [ -z "${KVER:-}" ]; then
    if ! have_pkg linux-image-amd64; then
      . /etc/os-release
      if [ "${VERSION_CODENAME:-}" = bookworm ]; then
        apt_install linux-image-amd64/bookworm-backports
      else
        apt_install linux-image-amd64
      fi
    fi
    KVER=$(dpkg-query -W -f='${Depends}' linux-image-amd64 | sed -n 's/.*linux-image-\([^ ,]*\) .*/\1/p' | head -1)
    KVER=${KVER%-unsigned}
  fi
  [ -n "$KVER" ] || die "cannot determine KVER"
  if [ ! -f "/boot/vmlinuz-$KVER" ] || [ ! -d "/lib/modules/$KVER/kernel" ]; then
    apt_update; apt_install_kpkg "linux-image-$KVER"
  fi
  KIMG=/boot/vmlinuz-$KVER
  KMOD=/lib/modules/$KVER
  KPKGVER=$(dpkg-query -W -f='${Version}' "linux-image-$KVER" 2>/dev/null || true)
}

# netdevsim: CONFIG_NETDEVSIM is not set in Debian's kernels (6.1 and 6.12), so build it
# out of tree from linux-source-X.Y (same version as the image) against linux-headers.
NSIM_KO=""
build_netdevsim() {
  local dir="$LAB_DIR/netdevsim/$KVER"
  if [ -f "$dir/netdevsim.ko" ]; then NSIM_KO="$dir/netdevsim.ko"; return 0; fi
  log "building netdevsim.ko for $KVER (not shipped by Debian)"
  if [ ! -d "$KMOD/build" ]; then
    apt_update; apt_install_kpkg "linux-headers-$KVER" || { log "WARN: linux-headers-$KVER not installable; netdevsim skipped"; return 0; }
  fi
  local series srcpkg deb
  series=$(echo "$KVER" | cut -d. -f1,2)          # 6.12.95+deb12-amd64 -> 6.12
  srcpkg="linux-source-$series"
  deb=$(ls "$LAB_DIR"/debs/"${srcpkg}"_*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    apt_update
    (cd "$LAB_DIR/debs" && apt-get download -qq "$srcpkg=$KPKGVER" >&2 2>/dev/null) \
      || { log "WARN: $srcpkg=$KPKGVER not downloadable; netdevsim skipped"; return 0; }
    deb=$(ls "$LAB_DIR"/debs/"${srcpkg}"_*.deb | head -1)
  fi
  rm -rf "$dir" "$LAB_DIR/netdevsim/src" && mkdir -p "$dir" "$LAB_DIR/netdevsim/src"
  dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' \
    | tar -xJ -C "$LAB_DIR/netdevsim/src" --wildcards '*/drivers/net/netdevsim/*'
  cp "$LAB_DIR"/netdevsim/src/*/drivers/net/netdevsim/* "$dir/"
  make -s -C "$KMOD/build" M="$dir" CONFIG_NETDEVSIM=m modules -j"$(nproc)" >"$dir/build.log" 2>&1 \
    || { log "WARN: netdevsim build failed, see $dir/build.log"; return 0; }
  NSIM_KO="$dir/netdevsim.ko"
}

# ---------------------------------------------------------------------------
# 2. initramfs: busybox-static + iproute2/ethtool/lspci/kmod with their glibc libs + modules
# ---------------------------------------------------------------------------
copy_with_libs() {  # copy_with_libs ROOT BIN...
  local root=$1; shift
  local b lib
  for b in "$@"; do
    [ -e "$b" ] || continue
    mkdir -p "$root$(dirname "$b")"; cp -L "$b" "$root$b"
    for lib in $(ldd "$b" 2>/dev/null | grep -o '/[^ )]*'); do
      [ -e "$root$lib" ] && continue
      mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
    done
  done
}

build_initramfs() {
  INITRD="$LAB_DIR/initramfs-$KVER.cpio.gz"
  local stamp key
  key=$( { sha256sum "$SELF" "${GUEST_FILES[@]}"; echo "$KVER $LAB_MODULES $NSIM_KO"; [ -n "$NSIM_KO" ] && sha256sum "$NSIM_KO"; } | sha256sum | cut -c1-16)
  stamp="$INITRD.key"
  if [ -f "$INITRD" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ]; then return 0; fi
  local t0 root m f
  t0=$(now)
  root="$LAB_DIR/initramfs-root"
  rm -rf "$root"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,proc,sys,dev,run,tmp,var,mnt/host,lab}
  ln -s /run "$root/var/run"
  # Debian's busybox-static ash runs its own applets in preference to PATH (so "ip" would
  # be busybox's ip, "modprobe" busybox's, which cannot load .ko.xz): the guest's /bin/sh is
  # bash, and busybox links are not made for names that have a real binary.
  copy_with_libs "$root" /bin/bash /usr/sbin/ip /usr/sbin/devlink /usr/sbin/bridge /usr/sbin/tc \
    /usr/sbin/ethtool /usr/bin/lspci /usr/bin/kmod /usr/bin/strace
  cp /bin/busybox "$root/bin/busybox"
  local real=" sh ip modprobe insmod rmmod lsmod modinfo depmod bash "
  for m in $(/bin/busybox --list); do
    case "$real" in *" $m "*) continue ;; esac
    [ "$m" = busybox ] || ln -sf busybox "$root/bin/$m"
  done
  ln -sf bash "$root/bin/sh"
  for m in modprobe insmod rmmod lsmod modinfo depmod; do
    ln -sf /usr/bin/kmod "$root/usr/sbin/$m"; ln -sf /usr/bin/kmod "$root/sbin/$m"   # /sbin/modprobe: kernel request_module()
  done
  # what a dynamically linked Rust binary built on Debian 12 needs besides libc
  for f in libgcc_s.so.1 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libutil.so.1; do
    [ -e "/lib/x86_64-linux-gnu/$f" ] && cp -L "/lib/x86_64-linux-gnu/$f" "$root/lib/x86_64-linux-gnu/$f"
  done
  [ -f /usr/share/misc/pci.ids ] && { mkdir -p "$root/usr/share/misc"; cp -L /usr/share/misc/pci.ids "$root/usr/share/misc/"; }
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  # kernel modules + their dependencies (built-ins print nothing)
  mkdir -p "$root$KMOD"
  cp "$KMOD"/modules.order "$KMOD"/modules.builtin "$KMOD"/modules.builtin.modinfo "$root$KMOD/"
  for m in $LAB_MODULES; do
    modprobe -S "$KVER" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}'
  done | sort -u | while read -r f; do
    mkdir -p "$root$(dirname "$f")"; cp "$f" "$root$f"
  done
  if [ -n "$NSIM_KO" ]; then mkdir -p "$root$KMOD/extra"; cp "$NSIM_KO" "$root$KMOD/extra/"; fi
  depmod -b "$root" "$KVER"
  install -m 0755 "$LAB_HOME/lib/guest-init" "$root/init"
  install -m 0755 "$LAB_HOME/lib/lab-hotplug" "$root/sbin/lab-hotplug"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"; echo "$key" >"$stamp"
  log "initramfs $(du -h "$INITRD" | cut -f1) built in $(elapsed "$t0")s"
}

# ---------------------------------------------------------------------------
# 3. boot
# ---------------------------------------------------------------------------
pick_accel() {
  case "$ACCEL" in
    kvm|tcg) ;;
    auto)
      # /dev/kvm alone is not enough: on these build machines /dev/kvm is backed by kvm_pvm (PVM,
      # software "pagetable VM"), which cannot run a stock kernel (emulation failure on
      # the VEX-encoded instructions of the zstd decompressor; PVH entry spins).
      if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
        ACCEL=kvm
      else
        ACCEL=tcg
        [ -e /dev/kvm ] && log "/dev/kvm present but no kvm_intel/kvm_amd ($(ls /sys/module | grep -E '^kvm' | tr '\n' ' ')); using TCG"
      fi ;;
    *) die "ACCEL must be auto, kvm or tcg" ;;
  esac
}

shquote() { local s=${1//\'/\'\\\'\'}; printf "'%s' " "$s"; }

main() {
  # serialise installs/builds between concurrent runs; the boot itself runs unlocked
  exec 9>"$LAB_DIR/.build.lock"; flock 9
  ensure_packages
  resolve_kernel
  build_netdevsim
  build_initramfs
  flock -u 9; exec 9>&-
  [ "${1:-}" != --prepare ] || { log "prepared: kernel $KVER, initramfs $INITRD, netdevsim ${NSIM_KO:-none} ($(elapsed "$T_START")s)"; exit 0; }
  pick_accel

  RUN=${LAB_RUN:-"$LAB_DIR/runs/$(date +%Y%m%d-%H%M%S)-$$"}
  [ ! -e "$RUN/out" ] || die "LAB_RUN=$RUN already holds a run (out/)"
  mkdir -p "$RUN/out"
  local test=${1:-"$LAB_HOME/lib/sriov-facts.sh"}
  [ $# -eq 0 ] || shift
  [ -f "$test" ] || die "test $test not found"
  cp "$test" "$RUN/test"
  chmod +x "$RUN/test"
  : >"$RUN/args"; for a in "$@"; do shquote "$a" >>"$RUN/args"; done

  local qemu=(qemu-system-x86_64 -nographic -nodefaults -no-reboot -serial mon:stdio
              -m "$LAB_MEM" -smp "$LAB_SMP")
  local machine="q35"
  if [ "$ACCEL" = kvm ]; then
    qemu+=(-enable-kvm -cpu "${LAB_CPU:-host}"); machine="q35,kernel-irqchip=split"
  else
    qemu+=(-accel "tcg,thread=$LAB_TCG_THREAD" -cpu "${LAB_CPU:-max}")
  fi
  qemu+=(-machine "$machine")
  local append="console=ttyS0 panic=-1 loglevel=4 lab.accel=$ACCEL"
  if [ "$LAB_IOMMU" = 1 ]; then
    qemu+=(-device "intel-iommu,intremap=on"); append+=" intel_iommu=on"
  fi
  local i slot=1
  for ((i = 0; i < LAB_IGB_COUNT; i++)); do
    qemu+=(-device "pcie-root-port,id=rp$slot,bus=pcie.0,chassis=$slot,slot=$slot"
           -netdev "hubport,id=igbnet$i,hubid=0"
           -device "igb,bus=rp$slot,netdev=igbnet$i,mac=52:54:00:5a:10:$(printf %02x $((i + 1)))")
    slot=$((slot + 1))
  done
  if [ "$LAB_NVME" = 1 ]; then
    qemu+=(-device "pcie-root-port,id=rp$slot,bus=pcie.0,chassis=$slot,slot=$slot"
           -device nvme-subsys,id=nvmesubsys0
           -device "nvme,bus=rp$slot,serial=labnvme0,subsys=nvmesubsys0,sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2,max_ioqpairs=6")
    slot=$((slot + 1))
  fi
  qemu+=(-virtfs "local,path=$RUN,mount_tag=labrun,security_model=none,id=labrun")
  if [ -n "$LAB_SHARE" ]; then
    [ -d "$LAB_SHARE" ] || die "LAB_SHARE=$LAB_SHARE is not a directory"
    qemu+=(-virtfs "local,path=$(readlink -f "$LAB_SHARE"),mount_tag=host0,security_model=none,id=host0")
    append+=" lab.share=1"
  fi
  if [ -n "$LAB_APISERVER_PORT" ]; then
    case "$LAB_APISERVER_PORT" in *[!0-9]*) die "LAB_APISERVER_PORT=$LAB_APISERVER_PORT is not a port";; esac
    qemu+=(-netdev "user,id=api,restrict=on,guestfwd=tcp:10.0.2.100:443-cmd:socat STDIO TCP:127.0.0.1:$LAB_APISERVER_PORT"
           -device "virtio-net-pci,netdev=api,mac=52:54:00:5a:20:01")
  fi
  [ "$LAB_INTERACTIVE" = 1 ] && append+=" lab.interactive=1"
  qemu+=(-kernel "$KIMG" -initrd "$INITRD" -append "$append")
  printf '%q ' "${qemu[@]}" >"$RUN/qemu-cmdline"; echo >>"$RUN/qemu-cmdline"

  log "kernel $KVER ($KPKGVER), $(qemu-system-x86_64 --version | head -1), accel=$ACCEL"
  log "run dir $RUN"
  local t_boot rc=0
  t_boot=$(now)
  if [ "$LAB_INTERACTIVE" = 1 ]; then
    "${qemu[@]}" 2>&1 | tee "$RUN/console.log" || true
    rc=${PIPESTATUS[0]}
  else
    timeout "$LAB_TIMEOUT" "${qemu[@]}" </dev/null >"$RUN/console.log" 2>&1 &
    local qpid=$! tpid=""
    trap 'kill $qpid 2>/dev/null || true' EXIT   # timeout(1) runs QEMU in its own process group
    if [ "$LAB_QUIET" != 1 ]; then tail -n +1 -f --pid=$qpid "$RUN/console.log" & tpid=$!; fi
    # watchdog: a guest that cannot run (e.g. "KVM internal error" under a software KVM)
    # or never reaches userspace is stopped early instead of waiting for LAB_TIMEOUT
    local waited=0 why=""
    while kill -0 $qpid 2>/dev/null; do
      if grep -q 'KVM internal error' "$RUN/console.log"; then why="KVM internal error (try ACCEL=tcg)"; fi
      if [ $waited -ge "$LAB_BOOT_TIMEOUT" ] && ! grep -q 'LAB-TIME ready' "$RUN/console.log"; then
        why="guest not ready after ${LAB_BOOT_TIMEOUT}s"
      fi
      if [ -n "$why" ]; then log "stopping QEMU: $why"; kill $qpid 2>/dev/null; break; fi
      sleep 1; waited=$((waited + 1))
    done
    wait $qpid || rc=$?
    [ -z "$tpid" ] || wait $tpid 2>/dev/null || true
  fi
  local qemu_s total_s
  qemu_s=$(elapsed "$t_boot"); total_s=$(elapsed "$T_START")
  [ "$rc" = 124 ] && log "guest timed out after ${LAB_TIMEOUT}s"
  [ "$rc" = 0 ] || log "qemu exit status $rc"
  tr -d '\r' <"$RUN/console.log" | grep '^LAB-TIME' | sed 's/^/[run-lab] guest /' >&2 || true
  log "qemu wall time ${qemu_s}s (boot+test+poweroff), script total ${total_s}s"
  if [ -f "$RUN/out/rc" ]; then
    local trc
    trc=$(cat "$RUN/out/rc")
    log "test exit status $trc; log: $RUN/out/test.log, console: $RUN/console.log"
    exit "$trc"
  fi
  log "no result from the guest (see $RUN/console.log)"
  exit 2
}

main "$@"
