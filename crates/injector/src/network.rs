//! The pod's network selection annotation, parsed by the one parser in
//! [`sriov_api::selection`] (shared with the meta plugin); the injector needs only each
//! network's namespace and name.

pub use sriov_api::selection::ParseError;

/// One network the pod asks for, namespace resolved, borrowed from the annotation where it can
/// be (an admission parses the annotation with one allocation, the list).
pub use sriov_api::selection::NetworkName as Selection;

/// Parses the annotation value as upstream does: JSON first, the comma list when that fails;
/// an element without a namespace gets `default_namespace`.
pub fn parse<'a>(value: &'a str, default_namespace: &'a str) -> Result<Vec<Selection<'a>>, ParseError> {
    sriov_api::selection::parse_names(value, default_namespace)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sel<'a>(ns: &'a str, name: &'a str, interface: &'a str) -> Selection<'a> {
        Selection {
            namespace: ns.into(),
            name: name.into(),
            interface: interface.into(),
        }
    }

    #[test]
    fn comma_list_with_namespace_and_interface() {
        assert_eq!(
            parse("a, other/b@net1,c@eth2", "pods").unwrap(),
            vec![
                sel("pods", "a", ""),
                sel("other", "b", "net1"),
                sel("pods", "c", "eth2")
            ]
        );
    }

    #[test]
    fn json_list_defaults_the_namespace() {
        let v = r#"[{"name":"a","interface":"x"},{"name":"b","namespace":"other"}]"#;
        assert_eq!(
            parse(v, "pods").unwrap(),
            vec![sel("pods", "a", "x"), sel("other", "b", "")]
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
