// libcni-run: drives a CNI plugin through the CNI project's own runtime library (libcni), the
// code path container runtimes use: config loading, capability injection into runtimeConfig,
// the libcni result cache, version negotiation and CHECK's prevResult.
//
//	libcni-run add|check|del CONFLIST_FILE NETNS_PATH
//
// Environment: CNI_PATH (plugin dirs), CNI_CONTAINERID, CNI_IFNAME (default eth0),
// LIBCNI_CACHE_DIR (libcni's result cache), LIBCNI_CAP_MAC (passed as the "mac" capability).
// Prints the ADD result as JSON; on error prints the error and exits 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

func fail(err error) {
	fmt.Fprintln(os.Stdout, err.Error())
	os.Exit(1)
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: libcni-run add|check|del CONFLIST_FILE NETNS_PATH")
		os.Exit(2)
	}
	list, err := libcni.ConfListFromFile(os.Args[2])
	if err != nil {
		fail(err)
	}
	ifname := os.Getenv("CNI_IFNAME")
	if ifname == "" {
		ifname = "eth0"
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    os.Getenv("CNI_CONTAINERID"),
		NetNS:          os.Args[3],
		IfName:         ifname,
		CapabilityArgs: map[string]interface{}{},
	}
	if mac := os.Getenv("LIBCNI_CAP_MAC"); mac != "" {
		rt.CapabilityArgs["mac"] = mac
	}
	cache := os.Getenv("LIBCNI_CACHE_DIR")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "libcni-run-cache")
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), cache, nil)
	ctx := context.Background()
	switch os.Args[1] {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		out, err := json.Marshal(res)
		if err != nil {
			fail(err)
		}
		fmt.Println(string(out))
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}
