//! Facts about PCI drivers that every component needs the same answer to. Before this module the
//! CNI, the daemon and the device plugin each kept their own list, with different members.
//!
//! Three distinct facts, named distinctly:
//! * [`is_vfio_driver`] / [`is_uio_driver`]: which userspace-I/O flavour a driver is (what device
//!   nodes a pod needs: `/dev/vfio/<group>` or `/dev/uioN`).
//! * [`is_userspace_driver`]: the VF is driven from userspace (DPDK): no netdev, only the PF-side
//!   settings apply (upstream sriov-cni's `UserspaceDrivers`: vfio-pci, uio_pci_generic, igb_uio;
//!   upstream's device plugin also names `uio` for the uio flavour).
//! * [`leaves_no_netdev`]: a driver that by design gives the device no netdev: the userspace ones
//!   plus `pci-stub` (which only claims the device). A VF on any other driver without a netdev in
//!   the host's namespace has had its netdev moved into a pod.

/// The VFIO driver.
pub const VFIO_DRIVER: &str = "vfio-pci";

/// The UIO drivers: `igb_uio` (DPDK's out-of-tree module), `uio_pci_generic` (in-tree) and `uio`
/// (the name upstream's device plugin also accepts).
pub const UIO_DRIVERS: &[&str] = &["igb_uio", "uio_pci_generic", "uio"];

/// True for [`VFIO_DRIVER`].
pub fn is_vfio_driver(driver: &str) -> bool {
    driver == VFIO_DRIVER
}

/// True for one of [`UIO_DRIVERS`].
pub fn is_uio_driver(driver: &str) -> bool {
    UIO_DRIVERS.contains(&driver)
}

/// True for a userspace-I/O (DPDK) driver: VFIO or UIO.
pub fn is_userspace_driver(driver: &str) -> bool {
    is_vfio_driver(driver) || is_uio_driver(driver)
}

/// True for a driver that gives a device no netdev by design: userspace-I/O or `pci-stub`.
pub fn leaves_no_netdev(driver: &str) -> bool {
    is_userspace_driver(driver) || driver == "pci-stub"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_facts() {
        // (driver, userspace, no netdev)
        let table = [
            ("vfio-pci", true, true),
            ("uio_pci_generic", true, true),
            ("igb_uio", true, true),
            ("uio", true, true),
            ("pci-stub", false, true),
            ("igbvf", false, false),
            ("iavf", false, false),
            ("mlx5_core", false, false),
            ("", false, false),
            ("VFIO-PCI", false, false),
        ];
        for (d, userspace, no_netdev) in table {
            assert_eq!(
                (is_userspace_driver(d), leaves_no_netdev(d)),
                (userspace, no_netdev),
                "{d:?}"
            );
        }
        assert!(is_vfio_driver("vfio-pci") && !is_uio_driver("vfio-pci"));
        assert!(is_uio_driver("igb_uio") && !is_vfio_driver("igb_uio"));
    }
}
