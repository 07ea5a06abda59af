//! The runtime switches: ConfigMap `nri-control-switches`, key `config.json`
//! (`{"features":{"enableHugePageDownApi":bool,"enableHonorExistingResources":bool},
//! "user-defined-injections":{<pod label>:<JSONPatch add /metadata/annotations>}}`). Upstream
//! re-reads it every 30 s; here a watch delivers every change.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The ConfigMap's name and key, upstream's.
pub const CONFIG_MAP: &str = "nri-control-switches";
pub const CONFIG_KEY: &str = "config.json";

/// Parsed switches. A feature that the ConfigMap does not set falls back to the flag.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Switches {
    pub hugepage_down_api: Option<bool>,
    pub honor_existing_resources: Option<bool>,
    /// Pod label key → annotations added when the pod carries that label with value `"true"`.
    pub injections: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SwitchesError {
    #[error("{CONFIG_MAP}/{CONFIG_KEY} is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "{CONFIG_MAP}: user-defined injection {label:?} must be {{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{{..strings..}}}}, got {got}"
    )]
    Injection { label: String, got: String },
}

#[derive(Deserialize, Default)]
struct Features {
    #[serde(rename = "enableHugePageDownApi")]
    hugepage: Option<bool>,
    #[serde(rename = "enableHonorExistingResources")]
    honor: Option<bool>,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    features: Features,
    #[serde(default, rename = "user-defined-injections")]
    injections: BTreeMap<String, Value>,
}

fn injection(label: &str, patch: &Value) -> Result<BTreeMap<String, String>, SwitchesError> {
    // Upstream's examples write the patch as an object; older manifests as a JSON string.
    let parsed;
    let patch = match patch {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s)?;
            &parsed
        }
        other => other,
    };
    let bad = || SwitchesError::Injection {
        label: label.to_string(),
        got: patch.to_string(),
    };
    if patch.get("op").and_then(Value::as_str) != Some("add")
        || patch.get("path").and_then(Value::as_str) != Some("/metadata/annotations")
    {
        return Err(bad());
    }
    let Some(Value::Object(map)) = patch.get("value") else {
        return Err(bad());
    };
    map.iter()
        .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())).ok_or_else(bad))
        .collect()
}

impl Switches {
    /// Parses `config.json`'s text.
    pub fn parse(text: &str) -> Result<Switches, SwitchesError> {
        let file: File = serde_json::from_str(text)?;
        let injections = file
            .injections
            .iter()
            .map(|(label, patch)| Ok((label.clone(), injection(label, patch)?)))
            .collect::<Result<_, SwitchesError>>()?;
        Ok(Switches {
            hugepage_down_api: file.features.hugepage,
            honor_existing_resources: file.features.honor,
            injections,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_features_and_injections_in_both_spellings() {
        let s = Switches::parse(
            r#"{"features":{"enableHugePageDownApi":true},
                "user-defined-injections":{
                  "sriov":{"op":"add","path":"/metadata/annotations","value":{"k8s.v1.cni.cncf.io/networks":"net-a"}},
                  "old":"{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"x\":\"y\"}}"}}"#,
        )
        .unwrap();
        assert_eq!(s.hugepage_down_api, Some(true));
        assert_eq!(s.honor_existing_resources, None);
        assert_eq!(s.injections["sriov"]["k8s.v1.cni.cncf.io/networks"], "net-a");
        assert_eq!(s.injections["old"]["x"], "y");
    }

    #[test]
    fn rejects_an_injection_that_is_not_an_annotation_add() {
        let err = Switches::parse(r#"{"user-defined-injections":{"l":{"op":"remove","path":"/spec"}}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("\"l\""), "{err}");
    }
}
