# lab/tests/lib.sh - helpers for lab tests and demo sections; runs in the guest (bash).
# Source it first:   . "$(dirname "$0")/lib.sh"     (lab/demo.d sections: ../tests/lib.sh)
# Env (set by lab/lib/guest-run.sh): REPO=/mnt/host (the repo, shared over 9p), BIN=$REPO/target/debug,
# LAB_OUT (artifacts that come back to the host), LAB_BINS (cargo's list of test executables).
# Output protocol: one line "PASS <name>" or "FAIL <name>: <why>" per check; lab/run-tests counts them.
# Sourcing installs an EXIT trap that puts the NICs back as they were booted (lab_teardown).

: "${REPO:=/mnt/host}" "${BIN:=$REPO/target/debug}" "${LAB_OUT:=/lab/out}" "${LAB_BINS:=/lab/test-bins.tsv}"
LAB_NAME=${LAB_NAME:-$(basename "$0" .sh)}
LAB_FAILS=0

pass() { echo "PASS $1"; }
fail() { local n=$1; shift; echo "FAIL $n: ${*:-failed}"; LAB_FAILS=$((LAB_FAILS + 1)); }
# check NAME CMD...: PASS when CMD succeeds, else FAIL with the command line
check() { local n=$1; shift; if "$@"; then pass "$n"; else fail "$n" "$*"; fi; }
# check_eq NAME EXPECTED ACTUAL
check_eq() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds; non-zero after SECONDS
wait_for() {
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" 2>/dev/null; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    usleep 100000
  done
}
# heading TEXT: a visible section heading (demo output)
heading() { printf '\n---- %s ----\n' "$*"; }
# show CMD...: prints "$ CMD" and runs it (demo output)
show() { echo "\$ $*"; "$@"; }

# sysfs path of the Nth (0-based) igb PF, 8086:10c9, in PCI address order
lab_igb_pf() {
  local n=${1:-0} d i=0
  for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x8086:0x10c9 ] || continue
    [ $i -eq "$n" ] && { echo "$d"; return 0; }
    i=$((i + 1))
  done
  return 1
}
# count of VF netdevs of a PF (sysfs path)
lab_vf_netdevs() { ls -d "$1"/virtfn*/net/* 2>/dev/null | wc -l; }
lab_vf_netdevs_ge() { [ "$(lab_vf_netdevs "$1")" -ge "$2" ]; }
# lab_set_numvfs PF N: writes 0 first when needed (igb refuses N->M with EBUSY), waits until the
# N virtfn links exist and, when the VFs autoprobe, until each has its netdev (igbvf is async)
lab_set_numvfs() {
  local pf=$1 n=$2
  [ "$(cat "$pf/sriov_numvfs")" = 0 ] || echo 0 >"$pf/sriov_numvfs" || return 1
  [ "$n" = 0 ] && return 0
  echo "$n" >"$pf/sriov_numvfs" || return 1
  wait_for 20 test -e "$pf/virtfn$((n - 1))" || return 1
  if [ "$(cat "$pf/sriov_drivers_autoprobe")" = 1 ] && [ -e "$pf/net" ]; then
    wait_for 20 lab_vf_netdevs_ge "$pf" "$n"
  fi
}
# lab_bind PCI_ADDR DRIVER: driver_override + unbind + drivers_probe; DRIVER "" = back to default
lab_bind() {
  local dev=/sys/bus/pci/devices/$1
  [ -z "$2" ] || modprobe -q "$2"   # an override does not load the driver's module
  echo "$2" >"$dev/driver_override"
  [ -e "$dev/driver" ] && echo "$1" >"$dev/driver/unbind"
  echo "$1" >/sys/bus/pci/drivers_probe
  if [ -n "$2" ]; then [ "$(basename "$(readlink "$dev/driver" 2>/dev/null)")" = "$2" ]; fi
}

# lab_cargo_test NAME [FILTER...]: runs the ignored (lab-only) tests of the cargo test binary NAME
# (a test target like lab_igb, or a crate's unit tests like sriov_host; '-' becomes '_'), from its
# package dir as cargo would. Each test runs in a process of its own (--exact, one thread), so
# one PASS/FAIL line per test comes from its exit status, whatever it prints (logs written to
# stderr by a test can split libtest's "test x ... ok" lines) and even if another test aborts.
lab_cargo_test() {
  local name=${1//-/_}; shift
  local exes=() exe dir line out names t rc n ran=0
  if [ -f "$LAB_BINS" ]; then  # written by lab/run-tests from cargo's --message-format=json
    while IFS=$'\t' read -r n exe dir; do [ "$n" = "$name" ] && exes+=("$exe|$dir"); done <"$LAB_BINS"
  fi
  if [ ${#exes[@]} -eq 0 ]; then  # fallback (LAB_NO_BUILD): the newest target/debug/deps/NAME-<hash>
    exe=$(ls -t "$REPO"/target/debug/deps/"$name"-???????????????? 2>/dev/null | head -1)
    [ -n "$exe" ] && exes+=("$exe|$REPO")
  fi
  [ ${#exes[@]} -gt 0 ] || { fail "$name" "no cargo test binary $name (cargo test --no-run built it?)"; return 1; }
  out=$(mktemp)
  for line in "${exes[@]}"; do
    exe=${line%%|*}; dir=${line#*|}
    names=$(cd "$dir" && "$exe" --list --ignored "$@" 2>/dev/null | sed -n 's/: test$//p')
    [ -n "$names" ] || continue
    while read -r t; do
      ran=$((ran + 1))
      (cd "$dir" && "$exe" --ignored --exact --test-threads=1 "$t") </dev/null >"$out" 2>&1; rc=$?
      cat "$out"
      if [ $rc -eq 0 ]; then pass "$name::$t"; else fail "$name::$t" "exit $rc, output above"; fi
    done <<<"$names"
  done
  rm -f "$out"
  [ $ran -gt 0 ] || fail "$name" "no ignored (lab) test matches '${*:-}' in ${#exes[@]} binaries"
  [ "$LAB_FAILS" -eq 0 ]
}

# lab_state: one line per PCI function (driver, numvfs, netdevs), plus netdevsim devices and netns;
# guest-run.sh compares it before and after every script
lab_state() {
  local d
  for d in /sys/bus/pci/devices/*; do
    printf '%s driver=%s' "${d##*/}" "$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null)"
    [ -e "$d/sriov_numvfs" ] && printf ' numvfs=%s autoprobe=%s' "$(cat "$d/sriov_numvfs")" "$(cat "$d/sriov_drivers_autoprobe")"
    [ -d "$d/net" ] && printf ' net=%s' "$(ls "$d/net" | tr '\n' ,)"
    echo
  done
  echo "netdevsim: $(ls /sys/bus/netdevsim/devices 2>/dev/null | tr '\n' ' ')"
  echo "netns: $(ip netns list 2>/dev/null | cut -d' ' -f1 | tr '\n' ' ')"
}

# lab_teardown: back to the booted state: no VFs, no driver overrides, autoprobe on, every
# function on its default driver, no netdevsim devices, no netns
lab_teardown() {
  local d id
  for d in /sys/bus/pci/devices/*; do
    [ -e "$d/sriov_numvfs" ] && [ "$(cat "$d/sriov_numvfs")" != 0 ] && echo 0 >"$d/sriov_numvfs"
  done 2>/dev/null
  for d in /sys/bus/pci/devices/*; do
    # unset reads "(null)"; never touch the others (unbinding virtio-9p would hang the guest)
    case $(cat "$d/driver_override" 2>/dev/null) in "" | "(null)") ;; *) lab_bind "${d##*/}" "" 2>/dev/null ;; esac
    [ -e "$d/sriov_drivers_autoprobe" ] && echo 1 >"$d/sriov_drivers_autoprobe"
    [ -e "$d/sriov_totalvfs" ] && [ ! -e "$d/driver" ] && echo "${d##*/}" >/sys/bus/pci/drivers_probe
  done 2>/dev/null
  for d in /sys/bus/netdevsim/devices/netdevsim*; do
    [ -e "$d" ] || continue
    id=${d##*netdevsim}; echo 0 >"$d/sriov_numvfs" 2>/dev/null; echo "$id" >/sys/bus/netdevsim/del_device
  done
  ip -all netns delete 2>/dev/null
  true
}

[ "${LAB_NO_TEARDOWN:-0}" = 1 ] || trap lab_teardown EXIT
