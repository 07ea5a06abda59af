#!/bin/bash
# lab/bench/pod-start.sh - issue 14's benchmark on real igb VFs (run by lab/run-bench pod-start,
# not by lab/run-tests): pod create -> Running on the lab's real node (lab/lib/guest-node.sh:
# kubelet v1.36.2 on containerd + runc, our `multus` as the node's CNI) for pods with no
# secondary network and pods with one SR-IOV network (NAD sriov-net, our `sriov` plugin on an
# igbvf VF from sriovdp), in the same boot, and the `multus` process's time per ADD and DEL.
#
# Pods are created one at a time, kinds interleaved (none, sriov, none, ...), after one
# unmeasured warm-up pod per kind. Each pod is deleted once it is Running, and the next one is
# created only after its DEL ran (and, for an SR-IOV pod, its VF is back as it was): only three
# VFs, and no teardown overlapping the next pod's start.
#
# create -> Running: both ends seen by one `kubectl get pods --watch` in the guest, each line
# stamped with bash's $EPOCHREALTIME: from the pod's first appearance (the API object exists) to
# its first line with phase Running (the kubelet's status update reached the API). So the
# `kubectl create` process's own start-up is outside the interval.
#
# ADD / DEL: a bash wrapper in the CNI bin dir around `multus` and around each delegate
# (`bridge`, the default network; `sriov`) appends "PLUGIN COMMAND MICROSECONDS POD RC" per call
# ($EPOCHREALTIME around the real binary, so the wrapper's own start-up is outside its interval
# but inside the caller's: multus' "own" time = its time - its delegates' includes one bash start
# per delegate).
#
# Knob: BENCH_PODS=20 pods of each kind (3 to iterate). Output: a table and SUMMARY lines.
. "$(dirname "$0")/../tests/lib.sh"
export MULTUS_LOG=/tmp/multus.log   # the meta plugin logs to guest memory, not over 9p
. "$REPO/lab/lib/guest-node.sh"
trap 'cp /tmp/multus.log /tmp/cni-times /tmp/watch.log "$LAB_OUT/" 2>/dev/null; [ -z "${WATCH_PID:-}" ] || kill -- -"$WATCH_PID" 2>/dev/null; node_stop; lab_teardown' EXIT
trap 'exit 1' TERM

N=${BENCH_PODS:-20}
NET=sriov-net
RES=intel.com/intel_sriov_netdevice
TIMES=/tmp/cni-times
WATCH=/tmp/watch.log
POD_LIMIT=600   # s per pod start or teardown

if [ "${LAB_ACCEL:-tcg}" = tcg ]; then
  echo "NOTE: the guest runs under TCG (QEMU's CPU emulation, no KVM), its vCPUs on one host thread:"
  echo "      absolute times are inflated many times over; the difference between the kinds is what matters."
fi

PF=$(lab_igb_pf 0) || { fail bench:igb-pf "no 8086:10c9 PF"; exit 1; }
PFN=$(ls "$PF/net" | head -1)
ip link set "$PFN" up
lab_set_numvfs "$PF" 3 || { fail bench:vfs "3 VFs did not appear"; exit 1; }
vf_state() {  # what an SR-IOV pod's teardown must give back: driver, netdev, MAC, the PF's line
  local d=$PF/virtfn$1 n
  n=$(ls "$d/net" 2>/dev/null)
  echo "driver=$(basename "$(readlink "$d/driver")") netdev=$n mac=$(cat "/sys/class/net/$n/address" 2>/dev/null) pf: $(ip link show "$PFN" | grep "^ *vf $1 " | sed 's/^ *//')"
}
declare -A BEFORE
for i in 0 1 2; do BEFORE[$i]=$(vf_state "$i"); done
vfs_back() { local i; for i in 0 1 2; do [ "$(vf_state "$i")" = "${BEFORE[$i]}" ] || return 1; done; }

node_start || exit 1

# The timing wrappers: PLUGIN.real is the binary, PLUGIN the script containerd / multus exec.
for p in multus bridge sriov; do
  mv "$CNI_BIN/$p" "$CNI_BIN/$p.real"
  cat >"$CNI_BIN/$p" <<SH
#!/bin/bash
t0=\$EPOCHREALTIME
$CNI_BIN/$p.real
rc=\$?
t1=\$EPOCHREALTIME
pod=-
[[ \$CNI_ARGS =~ K8S_POD_NAME=([^\;]*) ]] && pod=\${BASH_REMATCH[1]}
echo "$p \${CNI_COMMAND:-?} \$(( \${t1/./} - \${t0/./} )) \$pod \$rc" >>$TIMES
exit \$rc
SH
  chmod +x "$CNI_BIN/$p"
done
: >"$TIMES"

cfg=/tmp/dp-config.json
echo '{"resourceList":[{"resourceName":"intel_sriov_netdevice","selectors":[{"vendors":["8086"],"devices":["10ca"],"drivers":["igbvf"]}]}]}' >"$cfg"
node_sriovdp "$cfg" intel_sriov_netdevice=3 || exit 1
# The same NAD as lab/tests/50-pods.sh: the sriov plugin sets vlan, spoofchk and trust per pod.
NAD_CONFIG='{"cniVersion":"1.0.0","type":"sriov","vlan":100,"spoofchk":"off","trust":"on","ipam":{"type":"host-local","subnet":"10.56.100.0/24","rangeStart":"10.56.100.10","rangeEnd":"10.56.100.20"}}'
node_nad "$NET" "$RES" "$NAD_CONFIG" | k create -f - >/dev/null || { fail bench:nad "kubectl create the NAD"; exit 1; }
# One watch for the whole run, in a process group of its own (the EXIT trap ends it), restarted
# if the API server ends it (its watch timeout, 30-60 min): a "- WATCH-RESTART" line marks that.
: >"$WATCH"
export WATCH KUBECTL KUBE
setsid bash -c 'while :; do
    "$KUBECTL" --kubeconfig "$KUBE/admin.kubeconfig" --cache-dir /tmp/kubectl-cache get pods --watch \
      --no-headers -o custom-columns=N:.metadata.name,P:.status.phase 2>/dev/null
    echo "- WATCH-RESTART"; sleep 1
  done | while IFS= read -r l; do printf "%s %s\n" "$EPOCHREALTIME" "$l"; done >>"$WATCH"' \
  </dev/null >/dev/null 2>&1 &
WATCH_PID=$!

# poll SECONDS CMD...: CMD every 0.5 s until it succeeds (non-zero after SECONDS). Unlike
# wait_for, no process per try but CMD's own (a sleep that is a bash read with a timeout on a
# fifo nobody writes): the single emulated CPU runs the pod's start-up meanwhile.
mkfifo /tmp/bench-nap && exec {NAP}<>/tmp/bench-nap
poll() {
  local end=$((SECONDS + $1)); shift
  until "$@" 2>/dev/null; do [ "$SECONDS" -lt "$end" ] || return 1; read -r -t 0.5 -u "$NAP" _; done
  return 0   # (the loop's status is its body's last: the read's timeout)
}
# first_seen POD [PHASE]: the watch's first stamp for POD (in PHASE)
first_seen() { awk -v n="$1" -v p="${2:-}" '$2 == n && (p == "" || $3 == p) {print $1; exit}' "$WATCH"; }
seen_running() { grep -qE "^[0-9.]+ $1 +Running\$" "$WATCH"; }
del_done() { grep -q "^multus DEL [0-9]* $1 " "$TIMES"; }

declare -a START_NONE START_SRIOV
# one_pod KIND NAME: create, wait Running, record, delete, wait for the teardown
one_pod() {
  local kind=$1 name=$2 nets="" req=() tc t0 t1 d dc
  if [ "$kind" = sriov ]; then nets="[{\"name\":\"$NET\"}]"; req=("$RES"); fi
  tc=$EPOCHREALTIME
  node_pod "$name" "$nets" "${req[@]}" | k create -f - >/dev/null || { fail "bench:create-$name" "kubectl create"; return 1; }
  if ! poll "$POD_LIMIT" seen_running "$name"; then
    fail "bench:running-$name" "not Running after ${POD_LIMIT}s: $(k get pod "$name" --no-headers 2>&1); $(tail -3 "$MULTUS_LOG")"
    return 1
  fi
  t0=$(first_seen "$name") t1=$(first_seen "$name" Running)
  d=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", (b - a) * 1000}')
  dc=$(awk -v a="$tc" -v b="$t1" 'BEGIN{printf "%.0f", (b - a) * 1000}')
  echo "$kind $name: create -> Running $d ms (from before the kubectl create process: $dc ms)"
  # a watch restart between the create and the first sight of the pod: its start is unknown
  if awk -v a="$tc" -v b="$t0" '$3 == "WATCH-RESTART" && $1 > a && $1 < b {f = 1} END {exit !f}' "$WATCH"; then
    echo "note: the watch restarted while $name was created: not counted"
  else case $name in warm-*) ;; *) if [ "$kind" = sriov ]; then START_SRIOV+=("$d"); else START_NONE+=("$d"); fi ;; esac; fi
  k delete pod "$name" --wait=true --timeout="${POD_LIMIT}s" >/dev/null 2>&1 \
    || { fail "bench:delete-$name" "still there after ${POD_LIMIT}s"; return 1; }
  poll "$POD_LIMIT" del_done "$name" || { fail "bench:del-$name" "no multus DEL for $name"; return 1; }
  if [ "$kind" = sriov ] && ! poll 120 vfs_back; then
    fail "bench:vf-back-$name" "$(for i in 0 1 2; do vf_state "$i"; done)"; return 1
  fi
}

T0=$(ms)
one_pod none warm-none && one_pod sriov warm-sriov || exit 1
for i in $(seq -w 1 "$N"); do
  one_pod none "none-$i" && one_pod sriov "sriov-$i" || exit 1
done
pass bench:pods-run
echo "($((2 * N + 2)) pods in $(( ($(ms) - T0) / 1000 )) s)"
check_eq bench:no-lease-left "" "$(ls /var/lib/cni/networks/$NET 2>/dev/null | grep -v -e '^lock$' -e '^last_reserved_ip')"
check_eq bench:no-netns-left "" "$(ip netns list)"

# p50 / p90 (nearest rank, as benches/pod_start.rs) of the numbers on stdin: "N P50 P90"
pcts() { sort -n | awk '{v[NR] = $1} END {if (NR == 0) {print "0 - -"; exit}
  i50 = int((NR - 1) * 0.5 + 0.5) + 1; i90 = int((NR - 1) * 0.9 + 0.5) + 1; printf "%d %.0f %.0f", NR, v[i50], v[i90]}'; }
# call_ms PLUGIN CMD KIND: the first PLUGIN CMD call per pod of KIND (not the warm-ups), in ms
call_ms() { awk -v p="$1" -v c="$2" -v k="$3-" '$1 == p && $2 == c && index($4, k) == 1 && !seen[$4]++ {printf "%.1f\n", $3 / 1000}' "$TIMES"; }
# own_ms CMD KIND: per pod, multus' time minus its delegates' (first call of each per pod)
own_ms() {
  awk -v c="$1" -v k="$2-" '$2 == c && index($4, k) == 1 && !seen[$1 " " $4]++ {
      if ($1 == "multus") m[$4] = $3; else d[$4] += $3 }
    END {for (p in m) printf "%.1f\n", (m[p] - d[p]) / 1000}' "$TIMES"
}
row() {  # row LABEL "N P50 P90"
  set -- "$1" $2
  printf '  %-52s n=%-3s p50 %8s ms  p90 %8s ms\n' "$1" "$2" "$3" "$4"
}
# Anything but one ADD and one DEL of multus per pod would make the per-call numbers mean less.
calls=$(awk '$1 == "multus" && ($2 == "ADD" || $2 == "DEL") {n[$2 " " $4]++} END {for (k in n) if (n[k] != 1) printf "%s x%d; ", k, n[k]}' "$TIMES")
[ -z "$calls" ] || echo "note: pods with more than one multus call of a kind: $calls"
bad=$(awk '$5 != 0' "$TIMES")
[ -z "$bad" ] || fail bench:cni-rc "CNI calls that failed: $bad"

s_none=$(printf '%s\n' "${START_NONE[@]}" | pcts) s_sriov=$(printf '%s\n' "${START_SRIOV[@]}" | pcts)
set -- $s_none; n_none=$1 p50_none=$2 p90_none=$3
set -- $s_sriov; p50_sriov=$2 p90_sriov=$3
echo
echo "pod create -> Running on the lab node (kubelet v1.36.2, containerd 1.6, runc; multus as the node's CNI;"
echo "debug build; guest under ${LAB_ACCEL:-tcg}), $N pods of each kind, one at a time, interleaved:"
row "no secondary network" "$s_none"
row "one SR-IOV network (sriov-net, an igbvf VF)" "$s_sriov"
echo "  one SR-IOV network adds (p50): $((p50_sriov - p50_none)) ms; (p90): $((p90_sriov - p90_none)) ms"
echo "per CNI call, as containerd ran it (multus includes its delegates; own = multus - delegates):"
declare -A S
for c in ADD DEL; do
  for kind in none sriov; do
    S[multus-$c-$kind]=$(call_ms multus "$c" "$kind" | pcts)
    S[own-$c-$kind]=$(own_ms "$c" "$kind" | pcts)
    S[bridge-$c-$kind]=$(call_ms bridge "$c" "$kind" | pcts)
  done
  S[sriov-$c-sriov]=$(call_ms sriov "$c" sriov | pcts)
  row "multus $c, no secondary network" "${S[multus-$c-none]}"
  row "multus $c, one SR-IOV network" "${S[multus-$c-sriov]}"
  row "  of which bridge (default network) $c, no secondary" "${S[bridge-$c-none]}"
  row "  of which bridge (default network) $c, SR-IOV pods" "${S[bridge-$c-sriov]}"
  row "  of which sriov $c" "${S[sriov-$c-sriov]}"
  row "  multus' own $c, no secondary network" "${S[own-$c-none]}"
  row "  multus' own $c, one SR-IOV network" "${S[own-$c-sriov]}"
done
summary() { set -- "$1" $2; echo "SUMMARY $1 n=$2 p50_ms=$3 p90_ms=$4 accel=${LAB_ACCEL:-tcg}"; }
summary pod-start/none "$s_none"
summary pod-start/sriov "$s_sriov"
echo "SUMMARY pod-start/sriov-minus-none n=$n_none p50_ms=$((p50_sriov - p50_none)) p90_ms=$((p90_sriov - p90_none)) accel=${LAB_ACCEL:-tcg}"
for k in multus-ADD-none multus-ADD-sriov own-ADD-none own-ADD-sriov sriov-ADD-sriov \
         multus-DEL-none multus-DEL-sriov own-DEL-none own-DEL-sriov sriov-DEL-sriov; do
  IFS=- read -r plugin c kind <<<"$k"
  summary "cni/$plugin/$c/$kind" "${S[$k]}"
done
exit "$LAB_FAILS"
