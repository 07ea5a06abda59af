//! `pfNames` / `rootDevices` entries: `<name>` or `<name>#<i>,<a>-<b>,...`.
//!
//! Upstream semantics: the part before `#` names the PF (netdev name or PCI address, compared
//! case-insensitively); the part after it lists the function indexes (VF number for netDevice,
//! `sfnum` for auxNetDevice), decimal, `a-b` inclusive. No `#` = every function of that PF.
//! The grammar of one name, index and range is `sriov_host::pf_range`'s (shared with the operator
//! and the daemon); the comma list and the error type for config loading are the device plugin's.
//! Upstream silently turns an unparsable entry into one that matches nothing; sriov-rs refuses it
//! at config load ([`RangeError`]), since such an entry is always a typo.

use std::fmt;

use sriov_host::pf_range::{self, VfRange};

/// One parsed `pfNames` / `rootDevices` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfRange {
    /// The entry as written (for messages).
    pub raw: String,
    /// The PF part, before `#`.
    pub name: String,
    /// Inclusive index ranges; `None` = no `#`, all functions.
    pub ranges: Option<Vec<(u32, u32)>>,
}

/// Why an entry is not a valid `<name>#<ranges>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("{0:?}: more than one '#'")]
    SeveralHashes(String),
    #[error("{0:?}: empty name before '#'")]
    EmptyName(String),
    #[error("{entry:?}: {part:?} is not a decimal index or a-b range")]
    NotANumber { entry: String, part: String },
    #[error("{entry:?}: range {start}-{end} ends before it starts")]
    Reversed { entry: String, start: u32, end: u32 },
}

impl PfRange {
    /// Parses one entry; see the [module docs](self).
    pub fn parse(raw: &str) -> Result<Self, RangeError> {
        let (name, list) = pf_range::split_entry(raw);
        let Some(list) = list else {
            return Ok(PfRange {
                raw: raw.to_string(),
                name: name.to_string(),
                ranges: None,
            });
        };
        if list.contains('#') {
            return Err(RangeError::SeveralHashes(raw.to_string()));
        }
        if name.is_empty() {
            return Err(RangeError::EmptyName(raw.to_string()));
        }
        let mut ranges = Vec::new();
        for item in list.split(',') {
            let r = VfRange::parse_item(item).map_err(|e| match e {
                pf_range::RangeError::Reversed { first, last } => RangeError::Reversed {
                    entry: raw.to_string(),
                    start: first,
                    end: last,
                },
                pf_range::RangeError::NotARange(part)
                | pf_range::RangeError::BadStart(part)
                | pf_range::RangeError::BadEnd(part) => RangeError::NotANumber {
                    entry: raw.to_string(),
                    part,
                },
            })?;
            ranges.push((r.first, r.last));
        }
        Ok(PfRange {
            raw: raw.to_string(),
            name: name.to_string(),
            ranges: Some(ranges),
        })
    }

    /// True when the PF part names `pf` (case-insensitive, as upstream).
    pub fn names(&self, pf: &str) -> bool {
        self.name.eq_ignore_ascii_case(pf)
    }

    /// True when `index` is in the ranges (or there are none). A function without an index
    /// (`None`) matches only an entry without `#`.
    pub fn contains(&self, index: Option<u32>) -> bool {
        match (&self.ranges, index) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(r), Some(i)) => r.iter().any(|&(a, b)| a <= i && i <= b),
        }
    }
}

impl fmt::Display for PfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Upstream's evaluation of a `pfNames` / `rootDevices` list against one function: only the
/// **first** entry whose name part matches `pf` decides (so `["p0#0-3","p0#8"]` never selects
/// function 8). Returns `None` when no entry names `pf`, else whether that entry takes `index`.
pub fn first_match<'a>(list: &'a [PfRange], pf: &str, index: Option<u32>) -> Option<(&'a PfRange, bool)> {
    list.iter().find(|r| r.names(pf)).map(|r| (r, r.contains(index)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        type Case<'a> = (&'a str, &'a str, Option<Vec<(u32, u32)>>);
        let ok: &[Case] = &[
            ("ens1f0", "ens1f0", None),
            ("ens1f0#0", "ens1f0", Some(vec![(0, 0)])),
            ("pf#0,2-7,9", "pf", Some(vec![(0, 0), (2, 7), (9, 9)])),
            ("eth1v#1-8", "eth1v", Some(vec![(1, 8)])),
            ("0000:3b:00.0#3-3", "0000:3b:00.0", Some(vec![(3, 3)])),
            ("p0#007", "p0", Some(vec![(7, 7)])),
        ];
        for (raw, name, ranges) in ok {
            let r = PfRange::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!((r.name.as_str(), &r.ranges), (*name, ranges), "{raw}");
        }
        let bad: &[(&str, &str)] = &[
            ("pf#7-2", "range 7-2 ends before it starts"),
            ("pf#", "\"\" is not a decimal"),
            ("pf#1,", "\"\" is not a decimal"),
            ("pf#a", "\"a\" is not a decimal"),
            ("pf#0x3", "\"0x3\" is not"),
            ("pf#-3", "\"\" is not a decimal"),
            ("pf#1-2-3", "\"2-3\" is not"),
            ("pf#1#2", "more than one '#'"),
            ("#1", "empty name"),
            ("pf# 1", "\" 1\" is not"),
            ("pf#99999999999", "is not a decimal"),
        ];
        for (raw, want) in bad {
            let e = PfRange::parse(raw).expect_err(raw).to_string();
            assert!(e.contains(want), "{raw}: {e}");
        }
    }

    #[test]
    fn contains_and_first_match_rule() {
        let r = PfRange::parse("pf#0,2-7,9").expect("valid");
        let hits: Vec<u32> = (0..12).filter(|i| r.contains(Some(*i))).collect();
        assert_eq!(hits, [0, 2, 3, 4, 5, 6, 7, 9]);
        assert!(!r.contains(None));
        assert!(PfRange::parse("pf").expect("valid").contains(None));

        let list: Vec<PfRange> = ["p0#0-3", "p0#8", "P1"]
            .iter()
            .map(|s| PfRange::parse(s).expect("valid"))
            .collect();
        assert_eq!(first_match(&list, "p0", Some(2)).map(|m| m.1), Some(true));
        assert_eq!(
            first_match(&list, "p0", Some(8)).map(|m| m.1),
            Some(false),
            "first entry decides"
        );
        assert_eq!(
            first_match(&list, "p1", Some(8)).map(|m| m.1),
            Some(true),
            "case-insensitive name"
        );
        assert_eq!(first_match(&list, "p2", Some(0)), None);
    }
}
