//! The pod's network selection annotation: a JSON list of multus NetworkSelectionElements, or
//! upstream's comma list `[namespace/]name[@interface]`.

use serde::Deserialize;

/// One network the pod asks for, namespace resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub namespace: String,
    pub name: String,
}

/// A malformed annotation; the messages are upstream's (tests and users grep them).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("empty string passed as network selection elements list")]
    Empty,
    #[error(
        "error parsing network selection element: invalid network selection element - more than one '/' rune in: '{0}'"
    )]
    TooManySlashes(String),
    #[error(
        "error parsing network selection element: invalid network selection element - more than one '@' rune in: '{0}'"
    )]
    TooManyAts(String),
    #[error(
        "error parsing network selection element: at least one of the network selection units is invalid: error found at '{0}'"
    )]
    InvalidUnit(String),
}

#[derive(Deserialize)]
struct Element {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

/// RFC 1123 label: `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => ok(first) && ok(last) && b.iter().all(|c| ok(c) || *c == b'-'),
        _ => false,
    }
}

fn parse_element(text: &str, default_namespace: &str) -> Result<Selection, ParseError> {
    let (namespace, rest) = match text.split('/').collect::<Vec<_>>()[..] {
        [name] => (default_namespace, name),
        [ns, name] => (ns, name),
        _ => return Err(ParseError::TooManySlashes(text.to_string())),
    };
    let (name, interface) = match rest.split('@').collect::<Vec<_>>()[..] {
        [name] => (name, ""),
        [name, iface] => (name, iface),
        _ => return Err(ParseError::TooManyAts(text.to_string())),
    };
    for unit in [namespace, name, interface] {
        if !unit.is_empty() && !is_dns_label(unit) {
            return Err(ParseError::InvalidUnit(unit.to_string()));
        }
    }
    Ok(Selection {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// Parses the annotation value as upstream does: JSON first, the comma list when that fails;
/// an element without a namespace gets `default_namespace`.
pub fn parse(value: &str, default_namespace: &str) -> Result<Vec<Selection>, ParseError> {
    if value.is_empty() {
        return Err(ParseError::Empty);
    }
    if let Ok(elements) = serde_json::from_str::<Vec<Element>>(value) {
        return Ok(elements
            .into_iter()
            .map(|e| Selection {
                namespace: if e.namespace.is_empty() {
                    default_namespace.to_string()
                } else {
                    e.namespace
                },
                name: e.name,
            })
            .collect());
    }
    value
        .split(',')
        .map(|e| parse_element(e.trim(), default_namespace))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sel(ns: &str, name: &str) -> Selection {
        Selection {
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn comma_list_with_namespace_and_interface() {
        assert_eq!(
            parse("a, other/b@net1,c@eth2", "pods").unwrap(),
            vec![sel("pods", "a"), sel("other", "b"), sel("pods", "c")]
        );
    }

    #[test]
    fn json_list_defaults_the_namespace() {
        let v = r#"[{"name":"a","interface":"x"},{"name":"b","namespace":"other"}]"#;
        assert_eq!(
            parse(v, "pods").unwrap(),
            vec![sel("pods", "a"), sel("other", "b")]
        );
    }

    #[test]
    fn malformed_elements_carry_upstreams_messages() {
        assert_eq!(
            parse("a/b/c", "d"),
            Err(ParseError::TooManySlashes("a/b/c".into()))
        );
        assert_eq!(parse("a@b@c", "d"), Err(ParseError::TooManyAts("a@b@c".into())));
        let err = parse("Bad_Net", "d").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error parsing network selection element: at least one of the network selection units is invalid: error found at 'Bad_Net'"
        );
        assert_eq!(parse("", "d"), Err(ParseError::Empty));
    }
}
