"""A real gRPC client (Python grpcio) of the kubelet's PodResources v1 socket: every RPC.

It connects with the target `unix:<path>` (grpcio sends the path as `:authority`) and compiles
proto/podresources_v1.proto, our copy of the published API, with grpcio-tools at run time. The
kubelet (Go gRPC) is the server, so this also checks our proto against the real kubelet.

usage: podresources.py PROTO_DIR OUT_DIR SOCKET NAMESPACE POD
prints JSON: {"list": {ns/pod/container: {resource: [ids]}}, "allocatable": {resource: [ids]},
              "get": {container: {resource: [ids]}}}
"""

import json
import os
import sys

from grpc_tools import protoc

proto_dir, out_dir, socket, namespace, pod = sys.argv[1:6]
os.makedirs(out_dir, exist_ok=True)
rc = protoc.main(
    [
        "protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        os.path.join(proto_dir, "podresources_v1.proto"),
    ]
)
if rc != 0:
    sys.exit(f"grpc_tools.protoc failed on podresources_v1.proto: {rc}")
sys.path.insert(0, out_dir)

import grpc  # noqa: E402
import podresources_v1_pb2 as pb  # noqa: E402
import podresources_v1_pb2_grpc as pb_grpc  # noqa: E402

TIMEOUT = 10
stub = pb_grpc.PodResourcesListerStub(grpc.insecure_channel("unix:" + socket))


def devices(devs):
    out = {}
    for d in devs:
        if d.device_ids:
            out.setdefault(d.resource_name, []).extend(d.device_ids)
    return {k: sorted(v) for k, v in out.items()}


listed = {}
for p in stub.List(pb.ListPodResourcesRequest(), timeout=TIMEOUT).pod_resources:
    for c in p.containers:
        listed[f"{p.namespace}/{p.name}/{c.name}"] = devices(c.devices)
alloc = devices(stub.GetAllocatableResources(pb.AllocatableResourcesRequest(), timeout=TIMEOUT).devices)
got = stub.Get(pb.GetPodResourcesRequest(pod_name=pod, pod_namespace=namespace), timeout=TIMEOUT)
get = {c.name: devices(c.devices) for c in got.pod_resources.containers}
print(json.dumps({"list": listed, "allocatable": alloc, "get": get}))
