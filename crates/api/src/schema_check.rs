//! Validation of a manifest against the CRD's OpenAPI schema, the way the API server does it, so
//! `sriovctl` refuses offline exactly what a cluster would refuse (wrong types, enums, ranges,
//! missing required fields) and names the field.
//!
//! Like the API server it prunes `null` from non-nullable fields (YAML `ipam:` with no value);
//! like kubectl's default `--validate=strict` it refuses fields the schema does not know.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

/// One schema violation: the JSON path (`spec.numVfs`) and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

/// Prune and validate `value` (one object's `spec`, `status`… subtree or the whole object) in
/// place against `schema`. Returns every violation, in document order.
pub fn prune_and_check(schema: &JSONSchemaProps, value: &mut Value, path: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    walk(schema, value, path, &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk(schema: &JSONSchemaProps, value: &mut Value, path: &str, out: &mut Vec<Violation>) {
    let mut fail = |message: String| {
        out.push(Violation {
            field: path.to_string(),
            message,
        });
    };
    if schema.x_kubernetes_preserve_unknown_fields == Some(true) && schema.type_.is_none() {
        return;
    }
    if schema.x_kubernetes_int_or_string == Some(true) {
        if !matches!(kind_of(value), "integer" | "string") {
            fail(format!("must be an integer or a string, got {}", show(value)));
        }
        return;
    }
    let Some(want) = schema.type_.as_deref() else {
        return;
    };
    let got = kind_of(value);
    let type_ok = got == want || (want == "number" && got == "integer");
    if !type_ok {
        fail(format!("must be of type {want}, got {got} {}", show(value)));
        return;
    }
    if let Some(allowed) = &schema.enum_ {
        let allowed: Vec<&Value> = allowed.iter().map(|j| &j.0).collect();
        if !allowed.contains(&&*value) {
            let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
            fail(format!(
                "unsupported value {}: supported values: {}",
                show(value),
                list.join(", ")
            ));
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.minimum
            && n < min
        {
            fail(format!("{} must be greater than or equal to {min}", show(value)));
        }
        if let Some(max) = schema.maximum
            && n > max
        {
            fail(format!("{} must be less than or equal to {max}", show(value)));
        }
        let int_range = match schema.format.as_deref() {
            Some("int32") => Some((i32::MIN as f64, i32::MAX as f64)),
            Some("uint32") => Some((0.0, u32::MAX as f64)),
            _ => None,
        };
        if let Some((lo, hi)) = int_range
            && (n < lo || n > hi)
        {
            fail(format!("{} does not fit in a 32-bit integer", show(value)));
        }
    }
    match value {
        Value::Object(map) => {
            if let Some(props) = &schema.properties {
                // Prune null from non-nullable fields, as the API server does; refuse unknown
                // fields, as kubectl's default strict field validation does.
                let open = schema.x_kubernetes_preserve_unknown_fields == Some(true)
                    || schema.additional_properties.is_some();
                map.retain(|k, v| match props.get(k) {
                    Some(p) => !(v.is_null() && p.nullable != Some(true)),
                    None => {
                        if !open {
                            out.push(Violation {
                                field: join(path, k),
                                message: "unknown field".to_string(),
                            });
                        }
                        open
                    }
                });
                for key in schema.required.iter().flatten() {
                    if !map.contains_key(key) {
                        out.push(Violation {
                            field: join(path, key),
                            message: "required field is missing".to_string(),
                        });
                    }
                }
                for (k, v) in map.iter_mut() {
                    if let Some(p) = props.get(k) {
                        walk(p, v, &join(path, k), out);
                    }
                }
            } else if let Some(JSONSchemaPropsOrBool::Schema(item)) = &schema.additional_properties {
                map.retain(|_, v| !(v.is_null() && item.nullable != Some(true)));
                for (k, v) in map.iter_mut() {
                    walk(item, v, &join(path, k), out);
                }
            }
        }
        Value::Array(items) => {
            let item_schema = match &schema.items {
                Some(JSONSchemaPropsOrArray::Schema(s)) => Some(s.as_ref()),
                Some(JSONSchemaPropsOrArray::Schemas(list)) => list.first(),
                None => None,
            };
            if let Some(item_schema) = item_schema {
                for (i, v) in items.iter_mut().enumerate() {
                    walk(item_schema, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// A value as it appears in a message: short, JSON-quoted.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}
