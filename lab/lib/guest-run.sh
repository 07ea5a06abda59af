#!/bin/bash
# Runs in the guest as /lab/test (lab/run-tests and lab/demo pass it to run-lab.sh):
#   guest-run.sh tests|demo|bench DIR GLOB HOST_REPO
# runs every executable $REPO/DIR/*.sh whose name matches GLOB (with or without .sh), in name
# order, each under a time limit, and checks after each one that it left the PCI functions,
# netdevsim and netns as they were booted (else "FAIL <name>:teardown" and a forced teardown).
# A script that exits non-zero without a FAIL line, or (tests) reports nothing, gets a FAIL line.
set -u
kind=$1 dir=$2 glob=${3:-*} host_repo=${4:-}
export REPO=/mnt/host
export BIN=$REPO/target/debug LAB_OUT=${LAB_OUT:-/lab/out} LAB_BINS=/lab/test-bins.tsv RUST_BACKTRACE=1
[ -f /lab/env ] && . /lab/env   # LAB_TEST_TIMEOUT etc. from the host
limit=${LAB_TEST_TIMEOUT:-600}

if [ ! -d "$REPO/$dir" ]; then echo "FAIL lab-share: $REPO/$dir is missing (LAB_SHARE not mounted?)"; exit 1; fi
# the repo at its host path too, so paths compiled into test binaries (CARGO_MANIFEST_DIR) resolve
if [ -n "$host_repo" ] && [ "$host_repo" != "$REPO" ] && [ ! -e "$host_repo" ]; then
  mkdir -p "$(dirname "$host_repo")" && ln -s "$REPO" "$host_repo"
fi
. "$REPO/lab/tests/lib.sh"
trap - EXIT
# run_limited CMD: CMD in a session of its own; after $limit s its whole process group is killed
# (killing only the script would leave its children holding the output pipe open)
run_limited() {
  setsid "$@" &
  local pid=$!
  ( sleep "$limit"; touch /tmp/lab-timeout; kill -TERM -"$pid"; sleep 2; kill -KILL -"$pid" ) >/dev/null 2>&1 &
  local watchdog=$!
  wait "$pid"; local rc=$?
  kill "$watchdog" 2>/dev/null
  return $rc
}
baseline=$(lab_state)
echo "$baseline" >"$LAB_OUT/state-at-boot.txt"

ran=0 failed=0
for t in "$REPO/$dir"/*.sh; do
  base=${t##*/} name=${base%.sh}
  [ "$base" = lib.sh ] && continue
  case $base in $glob | $glob.sh) ;; *) continue ;; esac
  ran=$((ran + 1))
  if [ "$kind" = demo ]; then printf '\n==================== %s ====================\n' "$name"
  else printf '\n=== lab test %s (t=%ss)\n' "$name" "$(cut -d' ' -f1 /proc/uptime)"; fi
  [ -x "$t" ] || { echo "FAIL $name: $t is not executable"; failed=$((failed + 1)); continue; }
  t0=$(date +%s)
  rm -f /tmp/lab-timeout
  { LAB_NAME=$name run_limited "$t" 2>&1; echo $? >/tmp/lab-rc; } | tee /tmp/lab-script.log
  rc=$(cat /tmp/lab-rc)
  nfail=$(grep -c '^FAIL ' /tmp/lab-script.log); npass=$(grep -c '^PASS ' /tmp/lab-script.log)
  if [ -e /tmp/lab-timeout ]; then echo "FAIL $name: killed after ${limit}s (LAB_TEST_TIMEOUT)"; nfail=$((nfail + 1))
  elif [ "$rc" != 0 ] && [ "$nfail" = 0 ]; then echo "FAIL $name: exit status $rc"; nfail=1
  elif [ "$kind" = tests ] && [ "$npass" = 0 ] && [ "$nfail" = 0 ]; then echo "FAIL $name: reported no PASS/FAIL line"; nfail=1
  fi
  now=$(lab_state)
  if [ "$now" != "$baseline" ]; then
    echo "FAIL $name:teardown: left the lab changed (lab_teardown in lab/tests/lib.sh runs on EXIT):"
    diff <(echo "$baseline") <(echo "$now") | sed 's/^/    /'
    lab_teardown; nfail=$((nfail + 1))
    [ "$(lab_state)" = "$baseline" ] || echo "WARN: forced teardown did not restore the boot state"
  fi
  [ "$nfail" = 0 ] || failed=$((failed + 1))
  if [ "$kind" = demo ]; then
    [ "$nfail" = 0 ] && echo "(section $name ok, $(($(date +%s) - t0))s)" || echo "(section $name FAILED)"
  else
    echo "=== $name: exit $rc, $npass PASS, $nfail FAIL lines, $(($(date +%s) - t0))s"
  fi
done
[ $ran -gt 0 ] || { echo "FAIL lab-select: no script in $dir matches '$glob'"; exit 1; }
echo "LAB-SCRIPTS ran=$ran failed=$failed"
[ $failed = 0 ]
