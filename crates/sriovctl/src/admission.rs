//! `sriovctl validate` / `sriovctl mutate`: the operator's admission webhook without a cluster.
//!
//! FILE holds an `AdmissionReview` (v1, with its `request`) followed by the cluster's other
//! objects (nodes, node states, policies, the operator config, the `supported-nic-ids`
//! ConfigMap). The first document may also be a bare object (e.g. a policy manifest): it is
//! then checked against the CRD schema as the API server would (a violation is a denial naming
//! the object and field) and reviewed as a `CREATE` of that object. The answer is the `AdmissionReview` with its
//! `response`, computed by the same code as the HTTPS webhook.
//!
//! Exit status: 0 allowed, 1 denied (the review is still printed), 2 unusable input (message
//! on stderr naming the object and field).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};
use sriov_operator::admission::{self, Cluster, Hook, Settings};

/// Output format of the review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Yaml,
}

/// Arguments shared by `validate` and `mutate`.
#[derive(clap::Args, Debug, Clone)]
pub struct AdmissionArgs {
    /// AdmissionReview (or a bare object) followed by the cluster's objects; `-` reads stdin.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Json)]
    pub output: Format,
    /// The operator's namespace (default: $NAMESPACE, else `sriov-network-operator`).
    #[arg(long, env = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// Kinds the operator's webhook answers for, with their plural resource names.
const KINDS: &[(&str, &str)] = &[
    ("SriovNetworkNodePolicy", "sriovnetworknodepolicies"),
    ("SriovOperatorConfig", "sriovoperatorconfigs"),
    ("SriovNetworkPoolConfig", "sriovnetworkpoolconfigs"),
    ("SriovNetwork", "sriovnetworks"),
    ("SriovIBNetwork", "sriovibnetworks"),
    ("OVSNetwork", "ovsnetworks"),
];
const GROUP_VERSION: &str = "sriovnetwork.openshift.io/v1";

/// Input that cannot be reviewed: the message names the object and field.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: malformed YAML/JSON: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}: no document")]
    Empty { path: String },
    #[error("{path}: document 0 {object}: field {field}: {message}")]
    Object {
        path: String,
        object: String,
        field: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Review { path: String, message: String },
}

fn read_input(file: &Path) -> Result<String, InputError> {
    let path = file.display().to_string();
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| InputError::Read { path, source })?;
        return Ok(text);
    }
    std::fs::read_to_string(file).map_err(|source| InputError::Read { path, source })
}

/// A bare object, ready for the webhook or already refused by the API server's checks.
enum Bare {
    Review(Value),
    /// The CRD schema refuses it (the API server would, before any webhook): the text.
    Refused(String),
}

/// Wraps a bare object into the `CREATE` review the API server would send for it, after the
/// API server's own checks (CRD schema: types, enums, ranges, required fields).
fn wrap_object(path: &str, object: Value) -> Result<Bare, InputError> {
    let meta = object.get("metadata");
    let get = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (name, namespace) = (get("name"), get("namespace"));
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let label = format!("{}/{}", if kind.is_empty() { "<no kind>" } else { &kind }, name);
    let err = |field: &str, message: String| InputError::Object {
        path: path.to_string(),
        object: label.clone(),
        field: field.to_string(),
        message,
    };
    let Some((_, resource)) = KINDS.iter().find(|(k, _)| *k == kind) else {
        let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        return Err(err(
            "kind",
            format!("{kind:?} is not one of {}", known.join(", ")),
        ));
    };
    if api_version != GROUP_VERSION {
        return Err(err(
            "apiVersion",
            format!("{api_version:?}, expected {GROUP_VERSION:?}"),
        ));
    }
    if name.is_empty() {
        return Err(err("metadata.name", "missing".to_string()));
    }
    if let Err(e) = sriov_api::parse::object_from_value(0, object.clone()) {
        return Ok(Bare::Refused(e.to_string()));
    }
    let gvk = json!({"group": "sriovnetwork.openshift.io", "version": "v1", "kind": kind});
    let gvr = json!({"group": "sriovnetwork.openshift.io", "version": "v1", "resource": resource});
    Ok(Bare::Review(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000000",
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "sriovctl"},
            "object": object,
            "oldObject": null,
            "dryRun": true,
        }
    })))
}

/// The review a refused bare object gets: the webhook's shape, the API server's text.
fn refused(text: &str) -> Value {
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "response": {
            "uid": "00000000-0000-0000-0000-000000000000",
            "allowed": false,
            "status": {"metadata": {}, "message": text, "reason": text},
        }
    })
}

/// Reviews FILE with `hook`; returns the response review.
pub fn review_file(hook: Hook, args: &AdmissionArgs, dev_mode: bool) -> Result<Value, InputError> {
    let path = args.file.display().to_string();
    let text = read_input(&args.file)?;
    let mut docs = admission::parse_objects(&text).map_err(|message| InputError::Syntax {
        path: path.clone(),
        message,
    })?;
    if docs.is_empty() {
        return Err(InputError::Empty { path });
    }
    let first = docs.remove(0);
    let review = if first.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        first
    } else {
        match wrap_object(&path, first)? {
            Bare::Review(r) => r,
            Bare::Refused(text) => return Ok(refused(&text)),
        }
    };
    let namespace = args.namespace.clone().unwrap_or_else(|| {
        eprintln!("note: NAMESPACE not set: using sriov-network-operator");
        "sriov-network-operator".to_string()
    });
    let cluster = Cluster::from_objects(&docs, &namespace).map_err(|e| InputError::Review {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let settings = Settings { namespace, dev_mode };
    admission::review(hook, &review, &settings, &cluster).map_err(|e| InputError::Review {
        path,
        message: e.to_string(),
    })
}

/// Runs `sriovctl validate` (`Hook::Validate`) or `sriovctl mutate` (`Hook::Mutate`).
pub fn run(hook: Hook, args: &AdmissionArgs) -> ExitCode {
    let dev_mode = std::env::var("DEV_MODE").is_ok_and(|v| v == "TRUE");
    let out = match review_file(hook, args, dev_mode) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match args.output {
        Format::Json => serde_json::to_string_pretty(&out).map_err(|e| e.to_string()),
        Format::Yaml => serde_saphyr::to_string(&out).map_err(|e| e.to_string()),
    };
    match text {
        Ok(t) => println!("{}", t.trim_end()),
        Err(e) => {
            eprintln!("error: cannot print the review: {e}");
            return ExitCode::from(2);
        }
    }
    let response = &out["response"];
    for w in response["warnings"].as_array().into_iter().flatten() {
        eprintln!("Warning: {}", w.as_str().unwrap_or(""));
    }
    if response["allowed"].as_bool() == Some(true) {
        ExitCode::SUCCESS
    } else {
        let reason = response["status"]["reason"].as_str().unwrap_or("denied");
        eprintln!("denied: {reason}");
        ExitCode::from(1)
    }
}
