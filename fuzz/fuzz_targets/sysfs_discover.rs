//! Host discovery (with the device plugin's extra sysfs reads) and the CNI plugin's VF lookup
//! (`Sysfs::locate`: PF netdev, VF index, netdev, driver) on a fixture tree corrupted by
//! the fuzz input: up to 8 edits, each replacing one entry of the tree (file, directory or
//! symlink) with garbage content, a directory, nothing, a dangling or looping link, or a link
//! to another entry of the tree. Discovery must not panic and must not fail while the PCI bus
//! itself can be listed. The tree is built once per process (tmpfs) and restored after each run.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use sriov_cni::sysfs::Sysfs;
use sriov_host::drivers::is_userspace_driver;
use sriov_device_plugin::from_host;
use sriov_device_plugin::sysfs_extra::{Needs, enrich};
use sriov_fuzz::sysfs_tree::CorruptibleTree;
use sriov_host::{DiscoverOptions, NetdevSource, discover_with};

/// VFs of the fixture (igb and ConnectX) and a PF, as a CNI config's `deviceID` names them.
const DEVICE_IDS: &[&str] = &["0000:01:10.0", "0000:01:10.2", "0000:81:00.1", "0000:01:00.0"];

static TREE: Mutex<Option<CorruptibleTree>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = TREE.lock().unwrap_or_else(|e| e.into_inner());
    let tree = guard.get_or_insert_with(CorruptibleTree::build);
    tree.corrupt(data);
    let bus_listable = std::fs::read_dir(tree.root().pci_devices()).is_ok();
    let options = DiscoverOptions {
        reader_threads: 1,
        netdevs: NetdevSource::Sysfs,
    };
    let result = discover_with(tree.root(), &options);
    if let Ok(d) = &result {
        let mut devices = from_host::devices(&d.devices);
        let needs = Needs {
            accelerators: true,
            aux: true,
            pkeys: true,
            vdpa: true,
        };
        enrich(tree.root(), &mut devices, needs);
    }
    let cni = Sysfs::new(tree.root().sys());
    for id in DEVICE_IDS {
        let id = id.parse().expect("a PCI address");
        if let Ok(vf) = cni.locate(&id) {
            // No netdev is only accepted for a VF bound to a userspace (DPDK) driver.
            if vf.netdev.is_none() {
                let driver = vf.driver.as_deref().unwrap_or("");
                assert!(
                    is_userspace_driver(driver),
                    "no netdev, driver {driver:?}"
                );
            }
        }
    }
    tree.restore();
    if bus_listable {
        if let Err(e) = result {
            panic!("discovery failed although bus/pci/devices is a listable directory: {e}");
        }
    }
});
