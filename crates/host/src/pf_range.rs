//! The `<pf>#<vf ranges>` grammar: `pfNames` / `rootDevices` entries of policies and device-plugin
//! selectors (`ens1f0`, `ens1f0#0-3`, `0000:3b:00.0#2`) and the `vfRange` of a node's VF groups
//! (`0-3`). Before this module the operator's renderer and admission, the device plugin and the
//! daemon each parsed it themselves, with different rules for signs, spaces and single indexes.
//!
//! The rules, upstream's (Go `strings.Split` on `#` and `-`, `strconv.Atoi` for numbers):
//! * the PF part is everything before the first `#`; no `#` means every function of that PF;
//! * an index is decimal digits with an optional leading `+` (Atoi takes it), nothing else: no
//!   spaces, no `-`, no hex;
//! * a range is `first-last`, inclusive, `last >= first`; where a single index is allowed
//!   ([`VfRange::parse_item`]: device-plugin lists, the daemon's `vfRange`) `n` means `n-n`.
//!
//! What each caller does with a bad entry (upstream's admission messages, the device plugin's
//! config errors) stays with the caller; the grammar and its errors live here.

use std::fmt;

/// Splits an entry at its first `#`: the PF part and, when there is a `#`, the text after it.
pub fn split_entry(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once('#') {
        Some((name, ranges)) => (name, Some(ranges)),
        None => (entry, None),
    }
}

/// One VF (or function) index: decimal digits with an optional leading `+`.
pub fn parse_index(text: &str) -> Option<u32> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// An inclusive VF index range `first-last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VfRange {
    pub first: u32,
    pub last: u32,
}

/// Why a range does not parse; each names the offending text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// No `-` where a `first-last` range is required.
    #[error("expected \"first-last\", got {0:?}")]
    NotARange(String),
    /// The part before the `-` (or the whole item) is not an index.
    #[error("start {0:?} is not a VF index")]
    BadStart(String),
    /// The part after the `-` is not an index (`1-2-3` has the end `2-3`).
    #[error("end {0:?} is not a VF index")]
    BadEnd(String),
    /// `last < first`.
    #[error("range {first}-{last}: end of range is smaller than its start")]
    Reversed { first: u32, last: u32 },
}

impl VfRange {
    /// `first-last` (a policy's `pfNames` suffix).
    pub fn parse(text: &str) -> Result<VfRange, RangeError> {
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| RangeError::NotARange(text.to_string()))?;
        Self::from_parts(a, b)
    }

    /// `first-last` or a single index `n` (= `n-n`): device-plugin range lists, `vfRange`.
    pub fn parse_item(text: &str) -> Result<VfRange, RangeError> {
        match text.split_once('-') {
            Some((a, b)) => Self::from_parts(a, b),
            None => {
                let n = parse_index(text).ok_or_else(|| RangeError::BadStart(text.to_string()))?;
                Ok(VfRange { first: n, last: n })
            }
        }
    }

    fn from_parts(a: &str, b: &str) -> Result<VfRange, RangeError> {
        let first = parse_index(a).ok_or_else(|| RangeError::BadStart(a.to_string()))?;
        let last = parse_index(b).ok_or_else(|| RangeError::BadEnd(b.to_string()))?;
        if last < first {
            return Err(RangeError::Reversed { first, last });
        }
        Ok(VfRange { first, last })
    }

    /// Whether `index` is in the range.
    pub fn contains(&self, index: u32) -> bool {
        self.first <= index && index <= self.last
    }

    /// Whether two ranges share at least one index.
    pub fn overlaps(&self, other: &VfRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

impl fmt::Display for VfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_at_the_first_hash() {
        assert_eq!(split_entry("ens1f0"), ("ens1f0", None));
        assert_eq!(split_entry("ens1f0#0-3"), ("ens1f0", Some("0-3")));
        assert_eq!(split_entry("p#1#2"), ("p", Some("1#2")));
        assert_eq!(split_entry("#"), ("", Some("")));
    }

    #[test]
    fn indexes_are_atoi_digits() {
        for (t, want) in [
            ("0", Some(0)),
            ("007", Some(7)),
            ("+3", Some(3)),
            ("4294967295", Some(u32::MAX)),
        ] {
            assert_eq!(parse_index(t), want, "{t:?}");
        }
        for t in ["", "+", "-1", " 1", "1 ", "0x3", "a", "4294967296", "++1"] {
            assert_eq!(parse_index(t), None, "{t:?}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(VfRange::parse("0-3"), Ok(VfRange { first: 0, last: 3 }));
        assert_eq!(VfRange::parse("+2-+2"), Ok(VfRange { first: 2, last: 2 }));
        assert_eq!(VfRange::parse("3"), Err(RangeError::NotARange("3".into())));
        assert_eq!(VfRange::parse("-1"), Err(RangeError::BadStart("".into())));
        assert_eq!(VfRange::parse("1-2-3"), Err(RangeError::BadEnd("2-3".into())));
        assert_eq!(
            VfRange::parse("5-2"),
            Err(RangeError::Reversed { first: 5, last: 2 })
        );
        assert_eq!(VfRange::parse_item("5"), Ok(VfRange { first: 5, last: 5 }));
        assert_eq!(VfRange::parse_item("1-4"), Ok(VfRange { first: 1, last: 4 }));
        assert_eq!(VfRange::parse_item(""), Err(RangeError::BadStart("".into())));
        assert_eq!(VfRange::parse_item("x"), Err(RangeError::BadStart("x".into())));
        assert_eq!(
            RangeError::BadEnd("2-3".into()).to_string(),
            "end \"2-3\" is not a VF index"
        );
    }

    #[test]
    fn contains_and_overlaps() {
        let r = VfRange { first: 2, last: 4 };
        assert!(!r.contains(1) && r.contains(2) && r.contains(4) && !r.contains(5));
        assert!(r.overlaps(&VfRange { first: 4, last: 9 }));
        assert!(!r.overlaps(&VfRange { first: 5, last: 9 }));
        assert_eq!(r.to_string(), "2-4");
    }
}
