//! CNI results across versions: the pod's result is the default network's, printed in the meta
//! config's `cniVersion` (0.3.x/0.4.0 carry `ips[].version`, 1.x does not).

use serde_json::{Value, json};

/// `true` for the 1.x result shape.
fn is_v1(version: &str) -> bool {
    version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| m >= 1)
}

/// `a >= b` for dotted CNI versions ("" is the oldest).
pub fn version_at_least(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) >= parse(b)
}

/// `result` in the shape of CNI version `to` (unchanged when `to` is empty).
pub fn convert(mut result: Value, to: &str) -> Value {
    if to.is_empty() {
        return result;
    }
    if let Some(ips) = result.get_mut("ips").and_then(Value::as_array_mut) {
        for ip in ips.iter_mut().filter_map(Value::as_object_mut) {
            if is_v1(to) {
                ip.remove("version");
            } else if !ip.contains_key("version") {
                let v6 = ip
                    .get("address")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.contains(':'));
                ip.insert("version".into(), json!(if v6 { "6" } else { "4" }));
            }
        }
    }
    if let Some(o) = result.as_object_mut() {
        o.insert("cniVersion".into(), json!(to));
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn converts_between_shapes() {
        let r = json!({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.0.0.2/24"}]});
        let v1 = convert(r, "1.0.0");
        assert_eq!(
            v1,
            json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]})
        );
        let back = convert(
            json!({"cniVersion":"1.1.0","ips":[{"address":"fd00::2/64"}]}),
            "0.3.1",
        );
        assert_eq!(back["ips"][0]["version"], "6");
        assert_eq!(back["cniVersion"], "0.3.1");
        assert!(version_at_least("1.1.0", "1.1.0") && version_at_least("1.0.0", "0.4.0"));
        assert!(!version_at_least("0.3.1", "0.4.0") && !version_at_least("", "0.4.0"));
    }
}
