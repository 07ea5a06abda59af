# lab/lib/guest-node.sh - a real Kubernetes node in the lab guest, for lab/tests/50-pods.sh and
# lab/demo.d/50-pods.sh (sourced after lab/tests/lib.sh; bash). The real kubelet v1.36.2 runs on
# Debian's containerd + runc (copied in by the host: /lab/node, lab_node_files in lab/lib/host.sh)
# and reports to the kube-apiserver lab/run-tests or lab/demo started on the host (kubeconfigs in
# /lab/kube, reached as https://10.0.2.100:443). The node's CNI is our `multus` meta plugin, whose
# default network is Debian's bridge + host-local, delegating to our `sriov` plugin for SR-IOV
# NetworkAttachmentDefinitions; sriovdp serves the igb VFs. Everything lives in the guest: the pod
# networks, the VFs, the images (imported from docker-archive tarballs, nothing is pulled).
#
# containerd's configuration is the test suite's (crates/testcluster/src/containerd.rs,
# docs/testing.md): restrict_oom_score_adj, SystemdCgroup = false with the kubelet's cgroupfs, a
# local sandbox_image. Two differences the initramfs needs: the `native` snapshotter (the guest has
# no overlay module) and runc's NoPivotRoot (pivot_root(2) refuses to move away from the
# initramfs, which is the guest's root: runc chroots instead).

KUBE=/lab/kube
NODE_FILES=/lab/node
K8S=$REPO/.tools/k8s/v1.36.2
KUBECTL=$REPO/.tools/bin/kubectl
NODE=sriov-lab
CNI_BIN=/opt/cni/bin
CNI_CONF=/etc/cni/net.d
CTR_SOCK=/run/containerd/containerd.sock
MULTUS_CACHE=/var/lib/cni/multus
# the meta plugin's log (the benchmark puts it on the guest's own memory instead of 9p)
MULTUS_LOG=${MULTUS_LOG:-$LAB_OUT/multus.log}
NODE_PIDS=()

# A discovery cache kept between calls: without one every kubectl call first walks the API's
# groups, dozens of requests through QEMU's forward (tens of seconds each under a loaded TCG).
k() { "$KUBECTL" --kubeconfig "$KUBE/admin.kubeconfig" --cache-dir /tmp/kubectl-cache "$@"; }
ctrk() { /usr/local/bin/ctr --address "$CTR_SOCK" -n k8s.io "$@"; }
# wait_slow SECONDS CMD...: wait_for with 2 s between tries, for kubectl: each call is a Go
# process the single TCG vCPU thread must run besides the kubelet and containerd
wait_slow() {
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" 2>/dev/null; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 2; done
}
ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }   # busybox date has no %N

# node_prereqs: what the host had to pass in; FAIL lines name what is missing
node_prereqs() {
  local f ok=0
  for f in "$KUBE/admin.kubeconfig" "$KUBE/node.kubeconfig" "$KUBE/multus.kubeconfig" "$K8S/kubelet" "$KUBECTL" \
           "$NODE_FILES/bin/containerd" "$NODE_FILES/bin/runc" "$NODE_FILES/cni/bridge" \
           "$NODE_FILES/images/pause.tar" "$NODE_FILES/images/busybox.tar" "$BIN/multus" "$BIN/sriov" "$BIN/sriovdp"; do
    [ -e "$f" ] || { fail node:files "$f missing (lab/run-tests and lab/demo pass it in: lab_cluster, lab_node_files)"; ok=1; }
  done
  return $ok
}

# node_image TARBALL: the reference a docker-archive tarball holds (its manifest.json RepoTags)
node_image() { tar -xOf "$1" manifest.json | sed -n 's/.*"RepoTags":\["\([^"]*\)".*/\1/p'; }

# node_start: network, binaries, containerd with the images, CNI config, kubelet (Ready), RBAC and
# the NAD CRD. Non-zero (with a FAIL line) when something does not come up.
node_start() {
  node_prereqs || return 1
  # The node's IP: the virtio NIC on QEMU's restricted user network (not the igb under test).
  local nic
  nic=$(for n in /sys/class/net/*; do [ "$(basename "$(readlink "$n/device/driver" 2>/dev/null)")" = virtio_net ] && basename "$n"; done | head -1)
  [ -n "$nic" ] || { fail node:nic "no virtio NIC (LAB_APISERVER_PORT not set?)"; return 1; }
  ip link set "$nic" up && ip addr replace 10.0.2.15/24 dev "$nic" && ip route replace default via 10.0.2.2

  mkdir -p /usr/local/bin "$CNI_BIN" "$CNI_CONF" /etc/containerd /etc/kubernetes /var/lib/containerd /var/lib/kubelet /sys/fs/cgroup
  cp "$NODE_FILES"/bin/* "$K8S/kubelet" /usr/local/bin/
  local l
  for l in "$NODE_FILES"/lib/*; do [ -e "/lib/x86_64-linux-gnu/${l##*/}" ] || cp "$l" /lib/x86_64-linux-gnu/; done
  cp "$NODE_FILES"/cni/* "$CNI_BIN/"
  cp "$BIN/multus" "$BIN/sriov" "$CNI_BIN/"
  # containerd copies the node's /etc/hosts (and resolv.conf when the pod has no DNS config) into
  # every sandbox; the initramfs has neither
  [ -e /etc/hosts ] || printf '127.0.0.1 localhost\n::1 localhost\n' >/etc/hosts
  [ -e /etc/resolv.conf ] || : >/etc/resolv.conf
  grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup
  # tmpfs, not the initramfs: the kubelet's and containerd's filesystem stats need a real mount
  mount -t tmpfs -o size=512m containerd /var/lib/containerd
  mount -t tmpfs -o size=256m kubelet /var/lib/kubelet

  PAUSE_IMAGE=$(node_image "$NODE_FILES/images/pause.tar")
  POD_IMAGE=$(node_image "$NODE_FILES/images/busybox.tar")
  cat >/etc/containerd/config.toml <<TOML
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.overlayfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CTR_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        NoPivotRoot = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$CNI_CONF"
    max_conf_num = 1
TOML
  # The node's CNI: Multus thin mode, our binary; the default network as its delegate.
  cat >"$CNI_CONF/00-multus.conf" <<JSON
{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus",
 "capabilities":{"io.kubernetes.cri.pod-annotations":true},
 "kubeconfig":"$KUBE/multus.kubeconfig","cniDir":"$MULTUS_CACHE","binDir":"$CNI_BIN",
 "logLevel":"verbose","logFile":"$MULTUS_LOG","logToStderr":false,
 "delegates":[{"cniVersion":"1.0.0","name":"lab-default","plugins":[{"type":"bridge","bridge":"cni0",
   "isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.0.0/24"}]],
   "routes":[{"dst":"0.0.0.0/0"}]}}]}]}
JSON
  local t0; t0=$(ms)
  PATH=/usr/local/bin:$PATH /usr/local/bin/containerd --config /etc/containerd/config.toml >"$LAB_OUT/containerd.log" 2>&1 &
  NODE_PIDS+=($!)
  ctr_up() { ctrk version >/dev/null 2>&1; }
  if ! wait_for 60 ctr_up; then fail node:containerd "containerd did not answer"; tail -20 "$LAB_OUT/containerd.log"; return 1; fi
  echo "(containerd answers after $(( $(ms) - t0 )) ms)"
  for l in pause busybox; do
    ctrk images import --snapshotter native "$NODE_FILES/images/$l.tar" >/dev/null \
      || { fail node:image-import "ctr images import $l.tar"; return 1; }
  done

  cat >/etc/kubernetes/kubelet.yaml <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
cgroupDriver: cgroupfs
localStorageCapacityIsolation: false
resolvConf: ""
evictionHard: {memory.available: "1%", nodefs.available: "1%", imagefs.available: "1%"}
authentication: {webhook: {enabled: false}, anonymous: {enabled: false}}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$CTR_SOCK
YAML
  # A Node left by an earlier kubelet (the demo's fake-CRI one) would look Ready at once.
  k delete node "$NODE" --ignore-not-found >/dev/null
  t0=$(ms)
  /usr/local/bin/kubelet --config /etc/kubernetes/kubelet.yaml --kubeconfig "$KUBE/node.kubeconfig" \
    --root-dir /var/lib/kubelet --hostname-override "$NODE" --node-ip 10.0.2.15 >"$LAB_OUT/kubelet.log" 2>&1 &
  NODE_PIDS+=($!)
  node_registered() { k get node "$NODE" >/dev/null; }
  if ! wait_slow 180 node_registered || ! k wait --for=condition=Ready "node/$NODE" --timeout=180s >/dev/null; then
    fail node:ready "node $NODE not Ready; see $LAB_OUT/kubelet.log"; tail -20 "$LAB_OUT/kubelet.log"; return 1
  fi
  pass node:ready
  echo "(kubelet on containerd: node Ready after $(( $(ms) - t0 )) ms)"

  # What the meta plugin may do: exactly Multus' ClusterRole, bound to the user of multus.kubeconfig.
  k apply -f "$REPO/deploy/crds/k8s.cni.cncf.io_network-attachment-definitions.yaml" -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: multus}
rules:
- {apiGroups: [k8s.cni.cncf.io], resources: ["*"], verbs: ["*"]}
- {apiGroups: [""], resources: [pods, pods/status], verbs: [get, update]}
- {apiGroups: ["", events.k8s.io], resources: [events], verbs: [create, patch, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: multus}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: multus}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: multus}]
YAML
  [ $? = 0 ] || { fail node:api-setup "NAD CRD or Multus RBAC"; return 1; }
  k wait --for condition=established --timeout=60s crd/network-attachment-definitions.k8s.cni.cncf.io >/dev/null \
    || { fail node:nad-crd "the NAD CRD is not established"; return 1; }
}

# node_sriovdp CONFIG: starts sriovdp (upstream's command line) and waits until the Node shows
# RESOURCE=COUNT for every "RESOURCE=COUNT" argument after CONFIG
node_sriovdp() {
  local cfg=$1; shift
  "$BIN/sriovdp" --config-file "$cfg" >"$LAB_OUT/sriovdp.log" 2>&1 &
  NODE_PIDS+=($!)
  local want res n
  alloc_is() { [ "$(k get node "$NODE" -o "jsonpath={.status.allocatable.intel\.com/$1}")" = "$2" ]; }
  for want in "$@"; do
    res=${want%=*} n=${want#*=}
    if ! wait_slow 180 alloc_is "$res" "$n"; then
      fail node:allocatable "intel.com/$res is '$(k get node "$NODE" -o "jsonpath={.status.allocatable.intel\.com/$res}")', want $n"
      tail -20 "$LAB_OUT/sriovdp.log"; return 1
    fi
  done
}

# node_pod NAME [NETWORKS] [RESOURCE...]: the YAML of a busybox pod (sleeps) on the node, with the
# network selection annotation and one of each RESOURCE (intel.com/...) when given
node_pod() {
  local name=$1 networks=${2:-} r ann="" req=""
  shift; shift
  [ -z "$networks" ] || ann="  annotations: {k8s.v1.cni.cncf.io/networks: '$networks'}"
  for r in "$@"; do req+="$r: \"1\", "; done
  [ -z "$req" ] || req="    resources: {requests: {${req%, }}, limits: {${req%, }}}"
  cat <<YAML
---
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: default
$ann
spec:
  nodeName: $NODE
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: $POD_IMAGE
    imagePullPolicy: Never
    command: [/bin/busybox, sleep, "3600"]
$req
YAML
}
# node_nad NAME RESOURCE CONFIG: the YAML of a NetworkAttachmentDefinition for RESOURCE
node_nad() {
  cat <<YAML
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: $1
  namespace: default
  annotations: {k8s.v1.cni.cncf.io/resourceName: $2}
spec:
  config: '$3'
YAML
}
# node_pods_running NAME...: waits (a watch, not polling) until the pods are Ready
node_pods_running() {
  local p args=()
  for p in "$@"; do args+=("pod/$p"); done
  k wait --for=condition=Ready "${args[@]}" --timeout=300s >/dev/null 2>&1   # (it logs its watch being cancelled)
}
# node_containers: "POD CONTAINER_ID" per pod, into CID[POD]
declare -A CID
node_containers() {
  local p id
  while read -r p id; do CID[$p]=${id#containerd://}; done < <(k get pods -o \
    'jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].containerID}{"\n"}{end}')
}
# pod_pid NAME: the pod's container's process (in the guest), from containerd (node_containers first)
pod_pid() { ctrk task ls | awk -v id="${CID[$1]}" '$1 == id {print $2}'; }
# pod_exec NAME CMD...: runs CMD in the pod's container (containerd + runc exec, as kubectl exec)
pod_exec() { local p=$1; shift; ctrk task exec --exec-id "lab-$RANDOM" "${CID[$p]}" "$@"; }
# pod_netns NAME: the pod's network namespace (/run/netns/NAME, where containerd 1.6 puts it)
pod_netns() { ip netns identify "$(pod_pid "$1")"; }

# node_stop: kubelet, sriovdp, containers, shims, containerd, their mounts, the default network's
# bridge; the guest as it was before node_start (lab_teardown does the VFs and netns). The API
# objects go with the host's cluster.
node_stop() {
  local p m
  kill "${NODE_PIDS[@]}" 2>/dev/null
  for p in /sys/fs/cgroup/k8s.io/*/cgroup.procs; do [ -f "$p" ] && xargs -r kill -KILL <"$p" 2>/dev/null; done
  for p in /proc/[0-9]*; do
    case $(readlink "$p/exe" 2>/dev/null) in
      /usr/local/bin/containerd-shim-runc-v2 | /usr/local/bin/containerd | /usr/local/bin/kubelet) kill -KILL "${p#/proc/}" 2>/dev/null ;;
    esac
  done
  kill -KILL "${NODE_PIDS[@]}" 2>/dev/null
  wait 2>/dev/null
  for m in $(awk '$2 ~ "^/(run/containerd|var/lib/kubelet|var/lib/containerd|run/netns/)" {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  for p in /sys/fs/cgroup/k8s.io/*/ /sys/fs/cgroup/k8s.io/; do [ -d "$p" ] && rmdir "$p" 2>/dev/null; done
  ip link del cni0 2>/dev/null
  NODE_PIDS=()
  true
}
