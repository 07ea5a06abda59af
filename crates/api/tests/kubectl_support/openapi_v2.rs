//! The OpenAPI v2 document kubectl downloads for client-side schema validation, built from our
//! CRD schemas. kubectl only accepts it as protobuf (gnostic `openapi.v2.Document`), so this
//! is a minimal protobuf writer for the few messages involved: Document{swagger, info,
//! definitions}, Schema{format, title, description, maximum, minimum, required, enum,
//! additionalProperties, type, items, properties, vendor extensions}. Field numbers follow
//! gnostic's `OpenAPIv2.proto`.

use serde_json::Value;

/// Protobuf wire encoding of one message being built.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }
    fn key(&mut self, field: u64, wire: u64) {
        self.varint((field << 3) | wire);
    }
    fn bytes(&mut self, field: u64, data: &[u8]) {
        self.key(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }
    fn string(&mut self, field: u64, s: &str) {
        self.bytes(field, s.as_bytes());
    }
    fn message(&mut self, field: u64, m: Msg) {
        self.bytes(field, &m.0);
    }
    fn double(&mut self, field: u64, v: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn boolean(&mut self, field: u64, v: bool) {
        self.key(field, 0);
        self.varint(u64::from(v));
    }
}

/// gnostic `Any` carrying a YAML (here JSON, which is YAML) value.
fn any_yaml(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &v.to_string());
    m
}

fn named(name: &str, value: Msg) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.message(2, value);
    m
}

/// A JSON-schema object (as in a CRD) → gnostic `Schema`.
fn schema(s: &Value) -> Msg {
    let mut m = Msg::default();
    let get = |k: &str| s.get(k);
    if let Some(v) = get("format").and_then(Value::as_str) {
        m.string(2, v);
    }
    if let Some(v) = get("title").and_then(Value::as_str) {
        m.string(3, v);
    }
    if let Some(v) = get("description").and_then(Value::as_str) {
        m.string(4, v);
    }
    if let Some(v) = get("maximum").and_then(Value::as_f64) {
        m.double(7, v);
    }
    if let Some(v) = get("minimum").and_then(Value::as_f64) {
        m.double(9, v);
    }
    for r in get("required").and_then(Value::as_array).into_iter().flatten() {
        if let Some(r) = r.as_str() {
            m.string(19, r);
        }
    }
    for e in get("enum").and_then(Value::as_array).into_iter().flatten() {
        m.message(20, any_yaml(e));
    }
    match get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Msg::default();
            item.boolean(2, *b);
            m.message(21, item);
        }
        Some(sub @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema(sub));
            m.message(21, item);
        }
        _ => {}
    }
    if let Some(t) = get("type").and_then(Value::as_str) {
        let mut item = Msg::default();
        item.string(1, t);
        m.message(22, item);
    }
    if let Some(items) = get("items") {
        let mut item = Msg::default();
        item.message(1, schema(items));
        m.message(23, item);
    }
    if let Some(props) = get("properties").and_then(Value::as_object) {
        let mut list = Msg::default();
        for (name, sub) in props {
            list.message(1, named(name, schema(sub)));
        }
        m.message(25, list);
    }
    if let Some(map) = s.as_object() {
        for (k, v) in map.iter().filter(|(k, _)| k.starts_with("x-kubernetes-")) {
            m.message(31, named(k, any_yaml(v)));
        }
    }
    m
}

/// The whole document: one definition per CRD kind, tagged with its group/version/kind.
pub fn document() -> Vec<u8> {
    let mut crds = sriov_api::crd::sriov_crds();
    crds.push(sriov_api::crd::nad_crd());
    let mut definitions = Msg::default();
    for crd in crds {
        let Some(v) = crd.spec.versions.first() else {
            continue;
        };
        let Some(root) = v.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()) else {
            continue;
        };
        let mut root = serde_json::to_value(root).expect("schema json");
        // The API server publishes type meta and metadata for every kind.
        if let Some(props) = root.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
            props.insert("kind".into(), serde_json::json!({"type": "string"}));
            props.insert("metadata".into(), serde_json::json!({"type": "object"}));
        }
        root["x-kubernetes-group-version-kind"] =
            serde_json::json!([{"group": crd.spec.group, "version": v.name, "kind": crd.spec.names.kind}]);
        let name = format!("{}.{}.{}", crd.spec.group, v.name, crd.spec.names.kind);
        definitions.message(1, named(&name, schema(&root)));
    }
    let mut info = Msg::default();
    info.string(1, "sriov-rs test apiserver");
    info.string(2, "v1");
    let mut doc = Msg::default();
    doc.string(1, "2.0");
    doc.message(2, info);
    doc.message(9, definitions);
    doc.0
}
