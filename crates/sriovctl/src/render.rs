//! `sriovctl render`: the operator's decisions without a cluster.
//!
//! Reads the objects a user applies (SriovOperatorConfig `default`, Nodes, SriovNetworkNodeStates
//! whose `status.interfaces` are the hardware, policies, pool configs, the `supported-nic-ids`
//! ConfigMap, networks, existing NADs), checked as the API server checks them (CRD schema and
//! defaults; the webhook does not run), and prints the objects the operator would write: one
//! `SriovNetworkNodeState` per config-daemon node, the `device-plugin-config` ConfigMap and one
//! `NetworkAttachmentDefinition` per network. The decisions are `sriov_operator::render`'s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};
use sriov_api::{Object, SriovNetworkNodeState};
use sriov_operator::admission::SupportedNics;
use sriov_operator::render::{
    ClusterInput, NadContext, NodeInfo, RenderError, nad_action, render_cluster, render_ib_network_nad,
    render_ovs_network_nad, render_sriov_network_nad,
};

use crate::admission::Format;

const DEFAULT_NAMESPACE: &str = "sriov-network-operator";
const DEFAULT_PREFIX: &str = "openshift.io";

#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {
    /// Manifests (multi-document YAML or JSON), read in order; `-` reads stdin.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Output format: a JSON list, or YAML documents.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Yaml)]
    pub output: Format,
    /// The operator namespace (default: $NAMESPACE, else `sriov-network-operator`).
    #[arg(long, env = "NAMESPACE")]
    pub namespace: Option<String>,
    /// The device plugin's resource prefix (default: $RESOURCE_PREFIX, else `openshift.io`).
    #[arg(long = "resource-prefix", env = "RESOURCE_PREFIX")]
    pub resource_prefix: Option<String>,
    /// Instead of the objects, print per node how the rendered spec differs from the spec of the
    /// node's SriovNetworkNodeState in the input (which PFs change, and how) and what the config
    /// daemon would do about it, judged on the node's reported interfaces (drain / reboot / none).
    #[arg(long)]
    pub diff: bool,
}

/// Why nothing was printed. Every message names the file or the object and field.
#[derive(Debug, thiserror::Error)]
pub enum RenderCliError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: Box<sriov_api::ApiError>,
    },
    #[error("{0}")]
    Render(Box<RenderError>),
    #[error("ConfigMap {namespace}/supported-nic-ids: {message}")]
    NicIds { namespace: String, message: String },
    #[error("cannot print the result: {0}")]
    Print(String),
}

impl From<RenderError> for RenderCliError {
    fn from(e: RenderError) -> Self {
        RenderCliError::Render(Box::new(e))
    }
}

/// What the operator would write, plus what it decided not to do.
pub struct Rendered {
    pub objects: Vec<Value>,
    pub notes: Vec<String>,
    /// The input's node states as they were (spec and status), by node name, for `--diff`.
    pub current: BTreeMap<String, Value>,
}

fn read(path: &PathBuf) -> Result<String, RenderCliError> {
    let shown = path.display().to_string();
    if shown == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|source| RenderCliError::Read { path: shown, source })?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|source| RenderCliError::Read { path: shown, source })
}

fn to_value<T: serde::Serialize>(what: &str, v: &T) -> Result<Value, RenderCliError> {
    serde_json::to_value(v).map_err(|e| RenderCliError::Print(format!("{what}: {e}")))
}

/// Renders the objects of `files` (the whole command minus printing).
pub fn render_files(args: &RenderArgs) -> Result<Rendered, RenderCliError> {
    let mut objects = Vec::new();
    let mut current = BTreeMap::new();
    for path in &args.files {
        let text = read(path)?;
        let shown = path.display().to_string();
        let values =
            sriov_operator::admission::parse_objects(&text).map_err(|message| RenderCliError::Parse {
                path: shown.clone(),
                source: Box::new(sriov_api::ApiError::Syntax { doc: 0, message }),
            })?;
        for (doc, mut value) in values.into_iter().enumerate() {
            // A node state's spec is ignored here (only its status, the hardware, is read), and
            // upstream's CRD does not require it; `kubectl get` output may lack it.
            if value.get("kind").and_then(Value::as_str) == Some("SriovNetworkNodeState") {
                if let Some(name) = value.pointer("/metadata/name").and_then(Value::as_str) {
                    current.insert(name.to_string(), value.clone());
                }
                if let Some(m) = value.as_object_mut() {
                    m.insert("spec".to_string(), json!({}));
                }
            }
            let obj =
                sriov_api::parse::object_from_value(doc, value).map_err(|source| RenderCliError::Parse {
                    path: shown.clone(),
                    source: Box::new(source),
                })?;
            objects.push(obj);
        }
    }
    let mut notes = Vec::new();
    let namespace = args.namespace.clone().unwrap_or_else(|| {
        notes.push(format!("NAMESPACE not set: using {DEFAULT_NAMESPACE}"));
        DEFAULT_NAMESPACE.to_string()
    });
    let resource_prefix = args
        .resource_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_PREFIX.to_string());
    let rendered = render_objects(objects, &namespace, &resource_prefix)?;
    notes.extend(rendered.notes);
    Ok(Rendered {
        objects: rendered.objects,
        notes,
        current,
    })
}

/// Renders parsed objects. Objects without `metadata.namespace` count as being in `namespace`
/// (as `kubectl apply -n <namespace>` would put them).
pub fn render_objects(
    mut objects: Vec<Object>,
    namespace: &str,
    resource_prefix: &str,
) -> Result<Rendered, RenderCliError> {
    let in_ns = |ns: &Option<String>| ns.as_deref().is_none_or(|n| n == namespace);
    let mut notes = Vec::new();
    let mut nodes = Vec::new();
    let mut interfaces = BTreeMap::new();
    let mut policies = Vec::new();
    let mut pools = Vec::new();
    let mut config = None;
    let mut nics = SupportedNics::builtin();
    let mut networks = Vec::new();
    let mut existing_nads = BTreeMap::new();
    for obj in objects.drain(..) {
        match obj {
            Object::Node(n) => nodes.push(NodeInfo {
                name: n.metadata.name.clone().unwrap_or_default(),
                labels: n.metadata.labels.clone().unwrap_or_default(),
            }),
            Object::NodeState(s) if in_ns(&s.metadata.namespace) => {
                let ifaces = s
                    .status
                    .as_ref()
                    .map(|st| st.interfaces.clone())
                    .unwrap_or_default();
                interfaces.insert(s.metadata.name.clone().unwrap_or_default(), ifaces);
            }
            Object::NodePolicy(mut p) => {
                p.metadata.namespace.get_or_insert_with(|| namespace.to_string());
                policies.push(*p);
            }
            Object::PoolConfig(mut p) => {
                p.metadata.namespace.get_or_insert_with(|| namespace.to_string());
                pools.push(*p);
            }
            Object::OperatorConfig(c)
                if in_ns(&c.metadata.namespace) && c.metadata.name.as_deref() == Some("default") =>
            {
                config = Some(c.spec.clone());
            }
            Object::ConfigMap(cm)
                if in_ns(&cm.metadata.namespace)
                    && cm.metadata.name.as_deref() == Some("supported-nic-ids") =>
            {
                let value = to_value("ConfigMap supported-nic-ids", &cm)?;
                nics = SupportedNics::from_config_map(&value).map_err(|e| RenderCliError::NicIds {
                    namespace: namespace.to_string(),
                    message: e.to_string(),
                })?;
            }
            Object::Nad(n) => {
                let key = (
                    n.metadata.namespace.clone().unwrap_or_default(),
                    n.metadata.name.clone().unwrap_or_default(),
                );
                existing_nads.insert(key, *n);
            }
            net @ (Object::Network(_) | Object::IbNetwork(_) | Object::OvsNetwork(_)) => networks.push(net),
            _ => {}
        }
    }
    if config.is_none() {
        notes.push(format!(
            "no SriovOperatorConfig \"default\" in {namespace}: the operator renders nothing until it exists; \
             shown as if it existed with an empty spec"
        ));
    }
    let input = ClusterInput {
        namespace,
        operator_config: config.as_ref(),
        nodes: &nodes,
        interfaces: &interfaces,
        policies: &policies,
        pools: &pools,
        supported_nics: &nics,
    };
    let cluster = render_cluster(&input)?;
    let mut out = Vec::new();
    for (node, spec) in &cluster.node_states {
        let mut state = SriovNetworkNodeState::new(node, spec.clone());
        state.metadata.namespace = Some(namespace.to_string());
        let mut value = to_value("SriovNetworkNodeState", &state)?;
        if let Some(m) = value.as_object_mut() {
            m.remove("status");
        }
        out.push(value);
    }
    out.push(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "device-plugin-config", "namespace": namespace},
        "data": cluster.device_plugin_config,
    }));
    for n in &cluster.notes {
        let mut where_ = n.node.clone();
        for part in [&n.policy, &n.pf] {
            if !part.is_empty() {
                where_ = format!("{where_}/{part}");
            }
        }
        notes.push(format!("{where_}: {}", n.message));
    }
    let ctx = NadContext {
        operator_namespace: namespace.to_string(),
        resource_prefix: resource_prefix.to_string(),
    };
    for mut net in networks {
        let nad = match &mut net {
            Object::Network(n) => {
                n.metadata.namespace.get_or_insert_with(|| namespace.to_string());
                render_sriov_network_nad(n, &ctx)?
            }
            Object::IbNetwork(n) => {
                n.metadata.namespace.get_or_insert_with(|| namespace.to_string());
                render_ib_network_nad(n, &ctx)?
            }
            Object::OvsNetwork(n) => {
                n.metadata.namespace.get_or_insert_with(|| namespace.to_string());
                render_ovs_network_nad(n, &ctx)?
            }
            _ => continue,
        };
        let key = (
            nad.metadata.namespace.clone().unwrap_or_default(),
            nad.metadata.name.clone().unwrap_or_default(),
        );
        match nad_action(&nad, existing_nads.get(&key)) {
            Ok(_) => out.push(to_value("NetworkAttachmentDefinition", &nad)?),
            // The operator leaves such a NAD alone and marks the network not ready.
            Err(e) => notes.push(e.to_string()),
        }
    }
    Ok(Rendered {
        objects: out,
        notes,
        current: BTreeMap::new(),
    })
}

/// Prints `objects` as a JSON list or as YAML documents.
pub fn format_objects(objects: &[Value], format: Format) -> Result<String, RenderCliError> {
    match format {
        Format::Json => {
            serde_json::to_string_pretty(objects).map_err(|e| RenderCliError::Print(e.to_string()))
        }
        Format::Yaml => {
            let mut out = String::new();
            for o in objects {
                out.push_str("---\n");
                out.push_str(&serde_saphyr::to_string(o).map_err(|e| RenderCliError::Print(e.to_string()))?);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            Ok(out)
        }
    }
}

/// Runs `sriovctl render`: 0 rendered, 1 nothing printed (the message on stderr).
pub fn run(args: &RenderArgs) -> ExitCode {
    let result = render_files(args).and_then(|r| {
        let text = if args.diff {
            crate::render_diff::diff_text(&r.objects, &r.current)?
        } else {
            format_objects(&r.objects, args.output)?
        };
        Ok((r.notes, text))
    });
    match result {
        Ok((notes, text)) => {
            for n in notes {
                eprintln!("note: {n}");
            }
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
