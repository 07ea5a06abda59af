//! Netdev attributes from the rtnetlink link dump ([`NetdevSource::Netlink`]) against the same
//! attributes read from sysfs files, on real kernel netdevs.
//!
//! A fake PCI tree's netdevs exist nowhere, so each test enters a private network namespace
//! (root needed) on its own thread and creates there real veth netdevs with the tree's names;
//! their real MAC, MTU and state are then written into the tree's `net/<if>/` files, so both
//! sources describe the same kernel objects.

mod common;

use std::process::Command;

use common::build;
use sriov_host::fixture::Fixture;
use sriov_host::{DiscoverOptions, Discovery, NetdevSource, discover_with};

/// Runs `f` on a thread that moved into a fresh network namespace.
fn in_private_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET): these tests need root");
            f()
        })
        .join()
        .expect("test thread")
    })
}

/// `ip` in the calling thread's network namespace (the child inherits it).
fn ip(args: &str) {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies the real netdev `name`'s MAC, MTU, admin state and operstate, as `ip -j link`
/// (iproute2) reports them, into the fixture's files. (Not from `/sys/class/net`: that shows the
/// namespace sysfs was mounted in, not this thread's.)
fn mirror_into_tree(fx: &Fixture, name: &str) {
    let out = Command::new("ip")
        .args(["-j", "link", "show", "dev", name])
        .output()
        .expect("run ip");
    assert!(out.status.success(), "ip link show {name}");
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j output");
    let link = &links[0];
    let text = |k: &str| {
        link[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} of {name}: {link}"))
    };
    fx.set_mac(name, text("address")).expect("mac");
    let mtu = link["mtu"].as_u64().expect("mtu") as u32;
    fx.set_mtu(name, mtu).expect("mtu");
    let up = link["flags"].as_array().expect("flags").iter().any(|f| f == "UP");
    fx.set_admin_up(name, up).expect("flags");
    fx.set_oper_state(name, &text("operstate").to_ascii_lowercase())
        .expect("operstate");
}

fn discover(fx: &Fixture, netdevs: NetdevSource) -> Discovery {
    let options = DiscoverOptions {
        reader_threads: 1,
        netdevs,
    };
    discover_with(fx.root(), &options).expect("discovery runs")
}

#[test]
fn the_dump_and_the_files_agree_on_real_netdevs() {
    let (_d, fx) = build(|h| h.igb_82576(3));
    in_private_netns(|| {
        // PF eth0 and VFs eth1..eth3: eth0/eth1 up (a veth pair is up only with both ends up),
        // eth2 up with its peer down (lowerlayerdown), eth3 down.
        ip("link add eth0 mtu 9000 type veth peer name eth1 mtu 1400");
        ip("link add eth2 type veth peer name eth3");
        ip("link set eth0 up");
        ip("link set eth1 up");
        ip("link set eth2 up");
        for n in ["eth0", "eth1", "eth2", "eth3"] {
            mirror_into_tree(&fx, n);
        }
        let from_files = discover(&fx, NetdevSource::Sysfs);
        let from_dump = discover(&fx, NetdevSource::Netlink);
        assert!(from_files.warnings.is_empty(), "{:#?}", from_files.warnings);
        assert_eq!(from_dump, from_files);

        let pf = &from_dump.devices.pfs[0];
        let states: Vec<_> = std::iter::once(&pf.pci)
            .chain(pf.vfs.iter().map(|v| &v.pci))
            .map(|p| {
                let n = p.netdev().expect("netdev");
                (n.name.as_str(), n.mtu, n.admin_up, n.oper_state.as_str())
            })
            .collect();
        assert_eq!(
            states,
            [
                ("eth0", 9000, true, "up"),
                ("eth1", 1400, true, "up"),
                ("eth2", 1500, true, "lowerlayerdown"),
                ("eth3", 1500, false, "down"),
            ]
        );
    });
}

#[test]
fn a_netdev_the_dump_does_not_know_is_read_from_its_files() {
    let (_d, fx) = build(|h| h.igb_82576(2));
    in_private_netns(|| {
        // Only eth0 and eth1 exist in this namespace; eth2 (VF 1) is only in the tree.
        ip("link add eth0 type veth peer name eth1");
        mirror_into_tree(&fx, "eth0");
        mirror_into_tree(&fx, "eth1");
        fx.set_mtu("eth2", 1234).expect("mtu");
        fx.set_mac("eth2", "02:00:00:00:00:42").expect("mac");
        let from_dump = discover(&fx, NetdevSource::Netlink);
        assert_eq!(from_dump, discover(&fx, NetdevSource::Sysfs));
        let vf1 = from_dump.devices.pfs[0].vfs[1].pci.netdev().expect("eth2");
        assert_eq!(
            (vf1.name.as_str(), vf1.mtu, vf1.mac.as_str()),
            ("eth2", 1234, "02:00:00:00:00:42")
        );
    });
}

#[test]
fn the_dump_differs_from_stale_files_and_wins() {
    // The dump is read, not the files: a tree whose files say otherwise shows the real values.
    let (_d, fx) = build(|h| h.igb_82576(1));
    in_private_netns(|| {
        ip("link add eth0 mtu 2000 type veth peer name eth1 mtu 3000");
        let from_dump = discover(&fx, NetdevSource::Netlink);
        let mtus: Vec<_> = std::iter::once(&from_dump.devices.pfs[0].pci)
            .chain(from_dump.devices.pfs[0].vfs.iter().map(|v| &v.pci))
            .map(|p| p.netdev().map(|n| n.mtu))
            .collect();
        assert_eq!(mtus, [Some(2000), Some(3000)]);
        let from_files = discover(&fx, NetdevSource::Sysfs);
        assert_ne!(from_files, from_dump, "the tree's files say 1500");
    });
}
