//! The pod's network selection annotation, parsed by the one parser in
//! [`sriov_api::selection`] (shared with the meta plugin); the injector needs only each
//! network's namespace and name.

pub use sriov_api::selection::ParseError;

/// One network the pod asks for, namespace resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub namespace: String,
    pub name: String,
}

/// Parses the annotation value as upstream does: JSON first, the comma list when that fails;
/// an element without a namespace gets `default_namespace`.
pub fn parse(value: &str, default_namespace: &str) -> Result<Vec<Selection>, ParseError> {
    Ok(sriov_api::selection::parse(value, default_namespace)?
        .into_iter()
        .map(|s| Selection {
            namespace: s.namespace,
            name: s.name,
        })
        .collect())
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
        assert_eq!(parse("", "d"), Err(ParseError::Empty));
    }
}
