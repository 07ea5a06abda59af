// grpc-go-client: a grpc-go client that dials a device plugin socket exactly as the kubelet
// does (a bare socket path as the target, the passthrough resolver and a unix dialer), so that
// grpc-go sends the socket PATH as the HTTP/2 :authority. It calls every DevicePlugin RPC (and,
// with -watcher, pluginregistration's) and prints the answers as JSON, in the shape of
// tests/grpcio/client.py. Messages are encoded by hand (a raw-bytes codec): Debian packages
// grpc-go but no protoc-gen-go-grpc, and this keeps the build offline (scripts/deps/40-grpc-clients.sh).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"time"

	"google.golang.org/grpc"
)

type raw struct{}

func (raw) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (raw) Unmarshal(d []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), d...)
	return nil
}
func (raw) Name() string { return "proto" }

func varint(b []byte, x uint64) []byte {
	for x >= 0x80 {
		b = append(b, byte(x)|0x80)
		x >>= 7
	}
	return append(b, byte(x))
}

func field(b []byte, num int, payload []byte) []byte {
	b = varint(b, uint64(num<<3|2))
	b = varint(b, uint64(len(payload)))
	return append(b, payload...)
}

type kv struct {
	num   int
	wire  int
	bytes []byte
	val   uint64
}

// fields parses one protobuf message level.
func fields(b []byte) ([]kv, error) {
	var out []kv
	for len(b) > 0 {
		key, n := uvarint(b)
		if n == 0 {
			return nil, errors.New("bad key")
		}
		b = b[n:]
		f := kv{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case 0:
			v, n := uvarint(b)
			if n == 0 {
				return nil, errors.New("bad varint")
			}
			f.val, b = v, b[n:]
		case 2:
			l, n := uvarint(b)
			if n == 0 || uint64(len(b)-n) < l {
				return nil, errors.New("bad length")
			}
			f.bytes, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return nil, fmt.Errorf("wire type %d", f.wire)
		}
		out = append(out, f)
	}
	return out, nil
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		x |= uint64(b[i]&0x7f) << (7 * uint(i))
		if b[i] < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		os.Exit(1)
	}
}

func main() {
	watcher := flag.Bool("watcher", false, "also call pluginregistration.Registration")
	flag.Parse()
	socket := flag.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// As the kubelet dials a plugin: the path is the target, so it is also the :authority.
	conn, err := grpc.DialContext(ctx, socket, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}))
	must(err, "dial")
	defer conn.Close()
	codec := grpc.ForceCodec(raw{})
	call := func(method string, req []byte) []byte {
		var resp []byte
		must(conn.Invoke(ctx, method, &req, &resp, codec), method)
		return resp
	}
	out := map[string]interface{}{"grpc_go_version": grpc.Version}

	opts, err := fields(call("/v1beta1.DevicePlugin/GetDevicePluginOptions", nil))
	must(err, "options")
	o := map[string]bool{"pre_start_required": false, "get_preferred_allocation_available": false}
	for _, f := range opts {
		if f.num == 1 {
			o["pre_start_required"] = f.val != 0
		} else if f.num == 2 {
			o["get_preferred_allocation_available"] = f.val != 0
		}
	}
	out["options"] = o

	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true},
		"/v1beta1.DevicePlugin/ListAndWatch", codec)
	must(err, "ListAndWatch")
	empty := []byte{}
	must(stream.SendMsg(&empty), "ListAndWatch send")
	must(stream.CloseSend(), "ListAndWatch close")
	var first []byte
	must(stream.RecvMsg(&first), "ListAndWatch recv")
	law, err := fields(first)
	must(err, "ListAndWatch message")
	devices := [][]string{}
	ids := []string{}
	for _, d := range law {
		df, err := fields(d.bytes)
		must(err, "device")
		var id, health string
		for _, f := range df {
			if f.num == 1 {
				id = string(f.bytes)
			} else if f.num == 2 {
				health = string(f.bytes)
			}
		}
		devices = append(devices, []string{id, health})
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out["devices"] = devices

	var creq []byte
	for _, id := range ids {
		creq = field(creq, 1, []byte(id))
	}
	creq = append(varint(creq, 3<<3|0), 1) // allocation_size = 1
	pref, err := fields(call("/v1beta1.DevicePlugin/GetPreferredAllocation", field(nil, 1, creq)))
	must(err, "preferred")
	preferred := [][]string{}
	for _, c := range pref {
		cf, err := fields(c.bytes)
		must(err, "preferred container")
		got := []string{}
		for _, f := range cf {
			got = append(got, string(f.bytes))
		}
		preferred = append(preferred, got)
	}
	out["preferred"] = preferred

	alloc, err := fields(call("/v1beta1.DevicePlugin/Allocate", field(nil, 1, field(nil, 1, []byte(ids[0])))))
	must(err, "allocate")
	envs := []map[string]string{}
	for _, c := range alloc {
		cf, err := fields(c.bytes)
		must(err, "allocate container")
		m := map[string]string{}
		for _, f := range cf {
			if f.num != 1 {
				continue
			}
			entry, err := fields(f.bytes)
			must(err, "env entry")
			var k, v string
			for _, e := range entry {
				if e.num == 1 {
					k = string(e.bytes)
				} else if e.num == 2 {
					v = string(e.bytes)
				}
			}
			m[k] = v
		}
		envs = append(envs, m)
	}
	out["allocate_envs"] = envs
	call("/v1beta1.DevicePlugin/PreStartContainer", field(nil, 1, []byte(ids[0])))
	out["pre_start"] = "ok"

	if *watcher {
		info, err := fields(call("/pluginregistration.Registration/GetInfo", nil))
		must(err, "GetInfo")
		i := map[string]interface{}{"supported_versions": []string{}}
		versions := []string{}
		for _, f := range info {
			switch f.num {
			case 1:
				i["type"] = string(f.bytes)
			case 2:
				i["name"] = string(f.bytes)
			case 3:
				i["endpoint"] = string(f.bytes)
			case 4:
				versions = append(versions, string(f.bytes))
			}
		}
		i["supported_versions"] = versions
		out["info"] = i
		call("/pluginregistration.Registration/NotifyRegistrationStatus", []byte{0x08, 0x01})
		out["notify"] = "ok"
	}
	must(json.NewEncoder(os.Stdout).Encode(out), "print")
}
