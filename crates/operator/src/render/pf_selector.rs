//! Matching a policy's `nicSelector` against the PFs a node reported, and the `pfNames`
//! `name#first-last` VF-range syntax.
//!
//! Upstream semantics (`SriovNetworkNicSelector.Selected`): every set field must match — vendor
//! and PF device id by equality, `rootDevices` by PCI address, `pfNames` by interface name or
//! any alternative name (the `#range` part ignored for matching), `netFilter` by `key:value`.

use sriov_api::NicSelector;
use sriov_host::InterfaceExt;

/// One `pfNames` entry: the PF (or alternative) name and its optional inclusive VF range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfName {
    pub name: String,
    pub range: Option<VfRange>,
}

// The grammar (`name#first-last`, what an index is) is sriov_host::pf_range's, shared with the
// admission webhook, the device plugin and the daemon.
pub use sriov_host::pf_range::VfRange;

impl PfName {
    /// Parse one `pfNames` entry; `Err(reason)` when it has a `#` but no valid `first-last` range.
    pub fn parse(entry: &str) -> Result<PfName, String> {
        match sriov_host::pf_range::split_entry(entry) {
            (name, None) => Ok(PfName {
                name: name.to_string(),
                range: None,
            }),
            (name, Some(range)) => {
                if range.contains('#') {
                    return Err("more than one '#' separator".to_string());
                }
                Ok(PfName {
                    name: name.to_string(),
                    range: Some(VfRange::parse(range).map_err(|e| e.to_string())?),
                })
            }
        }
    }

    /// Whether this entry names the PF (by name or alternative name).
    pub fn names(&self, iface: &InterfaceExt) -> bool {
        iface.name == self.name || iface.alt_names.contains(&self.name)
    }
}

/// A policy's `nicSelector`, compiled once (pfNames parsed) and then matched against PFs.
#[derive(Clone, Debug, Default)]
pub struct PfSelector {
    pub vendor: String,
    pub device_id: String,
    pub root_devices: Vec<String>,
    pub pf_names: Vec<PfName>,
    pub net_filter: String,
}

impl PfSelector {
    /// Compile a selector. `Err((index, reason))` names the bad `pfNames` entry.
    pub fn compile(sel: &NicSelector) -> Result<PfSelector, (usize, String)> {
        let pf_names = sel
            .pf_names
            .iter()
            .enumerate()
            .map(|(i, entry)| PfName::parse(entry).map_err(|reason| (i, reason)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PfSelector {
            vendor: sel.vendor.clone(),
            device_id: sel.device_id.clone(),
            root_devices: sel.root_devices.clone(),
            pf_names,
            net_filter: sel.net_filter.clone(),
        })
    }

    /// No field set: upstream treats it as matching nothing.
    pub fn is_empty(&self) -> bool {
        self.vendor.is_empty()
            && self.device_id.is_empty()
            && self.root_devices.is_empty()
            && self.pf_names.is_empty()
            && self.net_filter.is_empty()
    }

    /// Upstream `Selected`: whether this PF is selected (an empty selector selects every PF
    /// here; callers skip empty selectors as upstream does).
    pub fn selects(&self, iface: &InterfaceExt) -> bool {
        (self.vendor.is_empty() || self.vendor == iface.vendor)
            && (self.device_id.is_empty() || self.device_id == iface.device_id)
            && (self.root_devices.is_empty() || self.root_devices.contains(&iface.pci_address))
            && (self.pf_names.is_empty() || self.pf_names.iter().any(|p| p.names(iface)))
            && (self.net_filter.is_empty() || net_filter_match(&self.net_filter, &iface.net_filter))
    }

    /// The VF range a `pfNames` entry gives this PF, if any. sriov-rs honours a range written
    /// with an alternative name too (upstream only looks at the primary name there).
    pub fn range_for(&self, iface: &InterfaceExt) -> Option<VfRange> {
        self.pf_names
            .iter()
            .find(|p| p.names(iface))
            .and_then(|p| p.range)
    }
}

/// Upstream `NetFilterMatch`: both sides are `key:value` (first non-blank token on each side of
/// the first `:`); keys and values must be equal. Anything unparsable does not match.
pub fn net_filter_match(filter: &str, value: &str) -> bool {
    match (split_net_filter(filter), split_net_filter(value)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn split_net_filter(text: &str) -> Option<(&str, &str)> {
    // Upstream's regex `(?m)^\s*([^\s]+)\s*:\s*([^\s]+)`, first match: the key is greedy, so
    // it is the longest non-blank prefix that is followed by `:` and a non-blank value.
    for line in text.lines() {
        let s = line.trim_start();
        let token_len = s.find(char::is_whitespace).unwrap_or(s.len());
        for key_len in (1..=token_len).rev() {
            if !s.is_char_boundary(key_len) {
                continue;
            }
            let Some(after) = s[key_len..].trim_start().strip_prefix(':') else {
                continue;
            };
            let after = after.trim_start();
            let value_len = after.find(char::is_whitespace).unwrap_or(after.len());
            if value_len > 0 {
                return Some((&s[..key_len], &after[..value_len]));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{PfName, VfRange, net_filter_match};

    #[test]
    fn net_filter_matches_key_and_value_like_upstreams_regex() {
        assert!(net_filter_match(
            "openstack/NetworkID:3e2b-11",
            "openstack/NetworkID:3e2b-11"
        ));
        assert!(net_filter_match(
            "  openstack/NetworkID : abc",
            "openstack/NetworkID:abc extra"
        ));
        assert!(!net_filter_match(
            "openstack/NetworkID:abc",
            "openstack/NetworkID:abd"
        ));
        assert!(!net_filter_match("aws/NetworkID:abc", "openstack/NetworkID:abc"));
        // The key is greedy: with two colons the split is at the last one.
        assert!(net_filter_match("a:b:c", "a:b:c"));
        assert!(!net_filter_match("a:b:c", "a:bc"));
        assert!(!net_filter_match("", ""));
        assert!(!net_filter_match("novalue:", "novalue:"));
    }

    #[test]
    fn pf_names_parse_ranges_strictly() {
        assert_eq!(PfName::parse("eth0").map(|p| p.range), Ok(None));
        assert_eq!(
            PfName::parse("eth0#2-5").map(|p| p.range),
            Ok(Some(VfRange { first: 2, last: 5 }))
        );
        for bad in [
            "eth0#",
            "eth0#3",
            "eth0#a-1",
            "eth0#5-2",
            "eth0#1-2-3",
            "eth0#1-2#3",
            "eth0#99999999999-1",
        ] {
            assert!(PfName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_overlap_when_they_share_an_index() {
        let r = |a, b| VfRange { first: a, last: b };
        assert!(r(0, 3).overlaps(&r(3, 5)));
        assert!(r(2, 2).overlaps(&r(0, 7)));
        assert!(!r(0, 3).overlaps(&r(4, 7)));
    }
}
