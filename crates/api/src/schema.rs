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

/// `status.conditions`: `metav1.Condition` with the API server-side validation that Go CRDs get
/// from the type's kubebuilder markers (k8s-openapi's schema carries only types and
/// descriptions). Bounds as in apimachinery's `Condition`: type ≤ 316 characters, a qualified
/// name; status `True`/`False`/`Unknown`; reason 1–1024 characters, CamelCase-ish; message ≤
/// 32768 characters; observedGeneration ≥ 0; one entry per type (a list map keyed by `type`).
pub(crate) fn conditions_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "description": "One aspect of the object's state (metav1.Condition).",
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "properties": {
                "lastTransitionTime": {
                    "description": "When status last changed.",
                    "type": "string",
                    "format": "date-time"
                },
                "message": {
                    "description": "Human-readable details; may be empty.",
                    "type": "string",
                    "maxLength": 32768
                },
                "observedGeneration": {
                    "description": "The metadata.generation this condition was computed from.",
                    "type": "integer",
                    "format": "int64",
                    "minimum": 0
                },
                "reason": {
                    "description": "Machine-readable CamelCase reason for the last transition.",
                    "type": "string",
                    "maxLength": 1024,
                    "minLength": 1,
                    "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
                },
                "status": {
                    "description": "True, False or Unknown.",
                    "type": "string",
                    "enum": ["True", "False", "Unknown"]
                },
                "type": {
                    "description": "The condition's type, CamelCase or foo.example.com/CamelCase.",
                    "type": "string",
                    "maxLength": 316,
                    "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
                }
            }
        }
    })
}
