//! A VF PCI address `dddd:bb:dd.f`, validated so it is always safe to join onto a sysfs path.
//! The type is sriov-host's (one definition for the whole project); sriov-host is small (std,
//! serde, rustix), so the plugin binary stays light.

pub use sriov_host::model::{InvalidPciAddress, PciAddress};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            "0000:3B:02.3".parse::<PciAddress>().unwrap().as_str(),
            "0000:3b:02.3"
        );
        for bad in [
            "../../x",
            "0000:3b:02.8",
            "0000:3b:20.0",
            "0000:3b:02",
            "0000:3b:02.3/..",
            "",
            "0000/3b:02.3",
        ] {
            assert!(bad.parse::<PciAddress>().is_err(), "{bad}");
        }
    }
}
