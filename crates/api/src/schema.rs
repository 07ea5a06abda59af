//! Hand-written JSON schemas for fields whose Rust type is looser than upstream's CRD schema.
//!
//! `bridges` and `system` are carried as raw JSON in the node-state types (sriov-rs does not
//! manage OVS bridges), but the CRD must still describe them structurally as upstream does, or
//! the API server would prune them.

use schemars::{Schema, SchemaGenerator, json_schema};

fn string_map() -> serde_json::Value {
    serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}})
}

/// Upstream `OVSBridgeConfig`.
pub(crate) fn ovs_bridge_config() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "datapathType": {"type": "string"},
            "externalIDs": string_map(),
            "otherConfig": string_map(),
            "failMode": {"type": "string", "enum": ["secure", "standalone"]},
        }
    })
}

/// Upstream `OVSInterfaceConfig`.
pub(crate) fn ovs_interface_config() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "options": string_map(),
            "externalIDs": string_map(),
            "otherConfig": string_map(),
            "mtuRequest": {"type": "integer"},
        }
    })
}

/// Schema of upstream's `Bridges` (`{ovs: [OVSConfigExt]}`).
pub(crate) fn bridges_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "nullable": true,
        "properties": {
            "ovs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "bridge": ovs_bridge_config(),
                        "uplinks": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["pciAddress"],
                                "properties": {
                                    "pciAddress": {"type": "string"},
                                    "name": {"type": "string"},
                                    "interface": ovs_interface_config(),
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// Schema of upstream's `System` (`{rdmaMode}`).
pub(crate) fn system_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "nullable": true,
        "properties": {
            "rdmaMode": {"type": "string", "enum": ["shared", "exclusive"]}
        }
    })
}
