"""A real gRPC client (Python grpcio, the gRPC C core) against one sriovdp socket.

It connects with the target `unix:<path>`, so grpcio sends the socket path as the HTTP/2
`:authority` as the kubelet does. The published protos are compiled with grpcio-tools at run time.

usage: client.py PROTO_DIR OUT_DIR SOCKET MODE [ARGS...]
  MODE all        every DevicePlugin RPC (and, with --watcher, Registration's); prints JSON
  MODE memory N M open N ListAndWatch streams at once (reading the first message of each),
                  close them, then make M Allocate calls of one device each; prints JSON
"""

import json
import os
import sys

from grpc_tools import protoc

proto_dir, out_dir, socket, mode = sys.argv[1:5]
rest = sys.argv[5:]
os.makedirs(out_dir, exist_ok=True)
for proto in ("deviceplugin_v1beta1.proto", "pluginregistration_v1.proto"):
    rc = protoc.main(
        [
            "protoc",
            f"-I{proto_dir}",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            os.path.join(proto_dir, proto),
        ]
    )
    if rc != 0:
        sys.exit(f"grpc_tools.protoc failed on {proto}: {rc}")
sys.path.insert(0, out_dir)

import grpc  # noqa: E402
import deviceplugin_v1beta1_pb2 as dp  # noqa: E402
import deviceplugin_v1beta1_pb2_grpc as dp_grpc  # noqa: E402
import pluginregistration_v1_pb2 as pr  # noqa: E402
import pluginregistration_v1_pb2_grpc as pr_grpc  # noqa: E402

TIMEOUT = 10
channel = grpc.insecure_channel("unix:" + socket)
plugin = dp_grpc.DevicePluginStub(channel)
out = {"grpc_version": grpc.__version__}


def first_list(stub):
    stream = stub.ListAndWatch(dp.Empty(), timeout=TIMEOUT)
    first = next(stream)
    stream.cancel()
    return first


if mode == "all":
    o = plugin.GetDevicePluginOptions(dp.Empty(), timeout=TIMEOUT)
    out["options"] = {
        "pre_start_required": o.pre_start_required,
        "get_preferred_allocation_available": o.get_preferred_allocation_available,
    }
    first = first_list(plugin)
    ids = sorted(d.ID for d in first.devices)
    out["devices"] = [[d.ID, d.health] for d in first.devices]
    pref = plugin.GetPreferredAllocation(
        dp.PreferredAllocationRequest(
            container_requests=[
                dp.ContainerPreferredAllocationRequest(
                    available_deviceIDs=ids, allocation_size=1
                )
            ]
        ),
        timeout=TIMEOUT,
    )
    out["preferred"] = [list(c.deviceIDs) for c in pref.container_responses]
    alloc = plugin.Allocate(
        dp.AllocateRequest(
            container_requests=[dp.ContainerAllocateRequest(devices_ids=ids[:1])]
        ),
        timeout=TIMEOUT,
    )
    out["allocate_envs"] = [dict(c.envs) for c in alloc.container_responses]
    plugin.PreStartContainer(
        dp.PreStartContainerRequest(devices_ids=ids[:1]), timeout=TIMEOUT
    )
    out["pre_start"] = "ok"
    if "--watcher" in rest:
        reg = pr_grpc.RegistrationStub(channel)
        info = reg.GetInfo(pr.InfoRequest(), timeout=TIMEOUT)
        out["info"] = {
            "type": info.type,
            "name": info.name,
            "endpoint": info.endpoint,
            "supported_versions": list(info.supported_versions),
        }
        reg.NotifyRegistrationStatus(
            pr.RegistrationStatus(plugin_registered=True), timeout=TIMEOUT
        )
        out["notify"] = "ok"
elif mode == "memory":
    streams, allocs = int(rest[0]), int(rest[1])
    # All streams open at once (each has delivered its first message), then all closed.
    opened = [plugin.ListAndWatch(dp.Empty(), timeout=60) for _ in range(streams)]
    ids = []
    for s in opened:
        ids = sorted(d.ID for d in next(s).devices)
    for s in opened:
        s.cancel()
    for i in range(allocs):
        plugin.Allocate(
            dp.AllocateRequest(
                container_requests=[
                    dp.ContainerAllocateRequest(devices_ids=[ids[i % len(ids)]])
                ]
            ),
            timeout=TIMEOUT,
        )
    out["devices"] = len(ids)
    out["allocations"] = allocs
else:
    sys.exit(f"unknown mode {mode}")
channel.close()
print(json.dumps(out))
