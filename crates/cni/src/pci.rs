//! A VF PCI address `dddd:bb:dd.f`, validated so it is always safe to join onto a sysfs path
//! (kept local so the plugin binary stays small and independent of the discovery crate).

use std::fmt;
use std::str::FromStr;

/// A PCI address in canonical lower-case form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PciAddress(String);

/// Not `dddd:bb:dd.f`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid PCI address {0:?}: expected dddd:bb:dd.f (hex domain:bus:device.function)")]
pub struct InvalidPciAddress(pub String);

impl PciAddress {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PciAddress {
    type Err = InvalidPciAddress;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let hex = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_hexdigit);
        let ok = b.len() == 12
            && b[4] == b':'
            && b[7] == b':'
            && b[10] == b'.'
            && hex(0..4)
            && hex(5..7)
            && hex(8..10)
            && matches!(b[11], b'0'..=b'7')
            && u8::from_str_radix(&s[8..10], 16).is_ok_and(|d| d <= 0x1f);
        if ok {
            Ok(PciAddress(s.to_ascii_lowercase()))
        } else {
            Err(InvalidPciAddress(s.to_string()))
        }
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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
