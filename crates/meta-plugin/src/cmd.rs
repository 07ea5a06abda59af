//! The commands: ADD (the default network first, its result the pod's result, then every
//! selected network in order; network-status written), DEL (every delegate in reverse, from
//! what ADD cached, so it works after the pod object or the netns is gone), CHECK, and STATUS /
//! GC forwarded to the default network.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sriov_api::keys::RESOURCE_NAME;
use sriov_api::selection::{self, NETWORKS_ANNOTATION, NetworkSelection, Requests};

use crate::chain::{Runner, Target};
use crate::cniargs::{self, K8sArgs};
use crate::config::{DefaultNetwork, MetaConfig};
use crate::delegate::{self, Delegate};
use crate::devices::PodDeviceMap;
use crate::log::Log;
use crate::status::{self, DeviceInfo};
use crate::{default_route, files, kube_api, result, routes};

/// The pod annotation that replaces the default network (a NAD in `multusNamespace`).
pub const DEFAULT_NETWORK_ANNOTATION: &str = "v1.multus-cni.io/default-network";

/// The runtime's `CNI_*` environment.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub command: String,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub path: String,
}

/// A command's failure: the CNI error code and message.
#[derive(Debug)]
pub struct Failure {
    pub code: u32,
    pub msg: String,
}

fn fail(msg: impl Into<String>) -> Failure {
    Failure {
        code: 999,
        msg: msg.into(),
    }
}

/// What ADD leaves for DEL under `cniDir/<containerID>`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Scratch {
    pod_namespace: String,
    pod_name: String,
    infra_container_id: String,
    pod_uid: String,
    ifname: String,
    delegates: Vec<Delegate>,
}

/// One invocation of the meta plugin.
pub struct Plugin {
    pub cfg: MetaConfig,
    pub env: Env,
    /// The runtime's stdin (GC's valid attachments live in it).
    pub raw: Map<String, Value>,
    pub log: Log,
    k8s: K8sArgs,
    runtime_args: Vec<(String, String)>,
    runner: Runner,
}

impl Plugin {
    pub fn new(cfg: MetaConfig, env: Env, raw: Map<String, Value>, log: Log) -> Plugin {
        let runtime_args = cniargs::split(&env.args);
        let mut bin_dirs = vec![cfg.bin_dir.clone()];
        bin_dirs.extend(env.path.split(':').filter(|p| !p.is_empty()).map(PathBuf::from));
        let runner = Runner {
            bin_dirs,
            cni_dir: cfg.cni_dir.clone(),
            fallback_version: cfg.cni_version.clone(),
        };
        Plugin {
            k8s: K8sArgs::from_pairs(&runtime_args),
            runtime_args,
            runner,
            cfg,
            env,
            raw,
            log,
        }
    }

    pub async fn run(&self) -> Result<Option<Value>, Failure> {
        match self.env.command.as_str() {
            "ADD" => self.add().await.map(Some),
            "DEL" => self.del().await.map(|_| None),
            "CHECK" => self.check().map(|_| None),
            "STATUS" => self.forward("STATUS", Map::new()).await.map(|_| None),
            "GC" => self.gc().await.map(|_| None),
            other => Err(Failure {
                code: 4,
                msg: format!("unknown CNI_COMMAND {other:?}"),
            }),
        }
    }

    async fn client(&self) -> Result<Option<kube::Client>, Failure> {
        match &self.cfg.kubeconfig {
            None => Ok(None),
            Some(p) => kube_api::client(p)
                .await
                .map(Some)
                .map_err(|e| fail(e.to_string())),
        }
    }

    async fn wait_readiness(&self) -> Result<(), Failure> {
        let Some(f) = &self.cfg.readiness_indicator_file else {
            return Ok(());
        };
        let t0 = Instant::now();
        while !f.exists() {
            if t0.elapsed() > Duration::from_secs(45) {
                return Err(fail(format!(
                    "have you checked that your default network is ready? still waiting for readinessindicatorfile @ {}",
                    f.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }

    // ----- resolving the delegates -----

    fn nad_config(&self, nad: &sriov_api::NetworkAttachmentDefinition) -> Result<String, String> {
        if !nad.spec.config.is_empty() {
            return Ok(nad.spec.config.clone());
        }
        let name = nad.metadata.name.clone().unwrap_or_default();
        files::by_name(&self.cfg.conf_dir, &name).map(|v| v.to_string())
    }

    /// A `clusterNetwork`/`defaultNetworks` entry: a NAD in `multusNamespace`, a config named
    /// so in `confDir`, or a path.
    async fn named(
        &self,
        client: Option<&kube::Client>,
        name: &str,
        field: &str,
    ) -> Result<Delegate, String> {
        let ctx = |e: String| format!("config field `{field}` ({name}): {e}");
        if name.contains('/') {
            let conf = files::by_path(std::path::Path::new(name)).map_err(ctx)?;
            return Delegate::from_conf(conf, field).map_err(|e| ctx(e.to_string()));
        }
        if let Some(c) = client {
            let ns = &self.cfg.multus_namespace;
            if let Some(nad) = kube_api::nad(c, ns, name).await.map_err(|e| ctx(e.to_string()))? {
                let sel = NetworkSelection {
                    namespace: ns.clone(),
                    name: name.to_string(),
                    interface: String::new(),
                    element: Map::new(),
                };
                let config = self.nad_config(&nad).map_err(ctx)?;
                return Delegate::from_selection(&config, &sel, Requests::default(), None)
                    .map_err(|e| ctx(e.to_string()));
            }
        }
        let conf = files::by_name(&self.cfg.conf_dir, name).map_err(ctx)?;
        Delegate::from_conf(conf, field).map_err(|e| ctx(e.to_string()))
    }

    async fn default_delegates(
        &self,
        client: Option<&kube::Client>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Vec<Delegate>, String> {
        let mut out = Vec::new();
        match &self.cfg.default_network {
            DefaultNetwork::Delegates(confs) => {
                for (i, c) in confs.iter().enumerate() {
                    out.push(
                        Delegate::from_conf(c.clone(), &format!("delegates[{i}]"))
                            .map_err(|e| e.to_string())?,
                    );
                }
            }
            DefaultNetwork::Named {
                cluster_network,
                default_networks,
            } => {
                out.push(self.named(client, cluster_network, "clusterNetwork").await?);
                if !self.cfg.system_namespaces.contains(&self.k8s.namespace) {
                    for (i, n) in default_networks.iter().enumerate() {
                        out.push(self.named(client, n, &format!("defaultNetworks[{i}]")).await?);
                    }
                }
            }
        }
        if let Some(v) = annotations
            .get(DEFAULT_NETWORK_ANNOTATION)
            .filter(|v| !v.is_empty())
        {
            out[0] = self.annotated_default(client, v).await?;
        }
        out[0].master = true;
        Ok(out)
    }

    async fn annotated_default(
        &self,
        client: Option<&kube::Client>,
        value: &str,
    ) -> Result<Delegate, String> {
        let ctx = |e: String| {
            format!(
                "pod {}: annotation {DEFAULT_NETWORK_ANNOTATION}: {e}",
                self.k8s.pod()
            )
        };
        let sels = selection::parse(value, &self.cfg.multus_namespace).map_err(|e| ctx(e.to_string()))?;
        let [sel] = &sels[..] else {
            return Err(ctx(format!("names {} networks, one is allowed", sels.len())));
        };
        let c = client.ok_or_else(|| ctx("the config has no `kubeconfig` to read it with".into()))?;
        let nad = kube_api::nad(c, &sel.namespace, &sel.name)
            .await
            .map_err(|e| ctx(e.to_string()))?
            .ok_or_else(|| {
                ctx(format!(
                    "NetworkAttachmentDefinition {} not found",
                    sel.qualified_name()
                ))
            })?;
        let config = self.nad_config(&nad).map_err(ctx)?;
        // Multus reads the element's `default-route` for the default network too.
        let requests = Requests {
            default_route: sel.requests(0).map_err(|e| ctx(e.to_string()))?.default_route,
            ..Requests::default()
        };
        Delegate::from_selection(&config, sel, requests, None).map_err(|e| ctx(e.to_string()))
    }

    async fn pod_devices(&self) -> Result<PodDeviceMap, String> {
        use sriov_device_plugin::pod_resources;
        let resp = pod_resources::list(&self.cfg.pod_resources_socket, Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        let rows = pod_resources::flatten(&resp, None);
        Ok(PodDeviceMap::for_pod(&rows, &self.k8s.namespace, &self.k8s.name))
    }

    /// The networks the pod selects, in order; `with_devices`: ask the kubelet which device of
    /// each NAD's resource the pod holds (ADD).
    async fn selected(
        &self,
        client: Option<&kube::Client>,
        annotations: &BTreeMap<String, String>,
        with_devices: bool,
    ) -> Result<Vec<Delegate>, String> {
        let pod = self.k8s.pod();
        let Some(value) = annotations
            .get(NETWORKS_ANNOTATION)
            .filter(|v| !v.trim().is_empty())
        else {
            return Ok(Vec::new());
        };
        let sels = selection::parse(value, &self.k8s.namespace)
            .map_err(|e| format!("pod {pod}: annotation {NETWORKS_ANNOTATION}: {e}"))?;
        let client = client.ok_or_else(|| {
            format!("pod {pod}: annotation {NETWORKS_ANNOTATION} selects networks, but the config has no `kubeconfig` to read NetworkAttachmentDefinitions with")
        })?;
        let mut devices: Option<PodDeviceMap> = None;
        let mut out = Vec::new();
        for (i, s) in sels.iter().enumerate() {
            let ctx = |e: String| {
                format!(
                    "pod {pod}: network {} (annotation {NETWORKS_ANNOTATION}, element {i}): {e}",
                    s.qualified_name()
                )
            };
            if self.cfg.namespace_isolation
                && s.namespace != self.k8s.namespace
                && !self.cfg.global_namespaces.contains(&s.namespace)
            {
                return Err(ctx(format!(
                    "field `namespace`: namespaceIsolation forbids a pod in {} to use a network in {}",
                    self.k8s.namespace, s.namespace
                )));
            }
            let req = s.requests(i).map_err(|e| ctx(e.to_string()))?;
            let nad = kube_api::nad(client, &s.namespace, &s.name)
                .await
                .map_err(|e| ctx(e.to_string()))?
                .ok_or_else(|| {
                    ctx(format!(
                        "field `name`: NetworkAttachmentDefinition {} not found",
                        s.qualified_name()
                    ))
                })?;
            let resource = nad
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(RESOURCE_NAME))
                .filter(|r| !r.is_empty());
            let device = match resource {
                Some(r) if with_devices => {
                    if devices.is_none() {
                        devices = Some(
                            self.pod_devices()
                                .await
                                .map_err(|e| ctx(format!("PodResources: {e}")))?,
                        );
                    }
                    let map = devices.as_mut().ok_or_else(|| ctx("no device map".into()))?;
                    let held = map.held(r).to_vec();
                    let id = map.next(r).ok_or_else(|| {
                        ctx(format!(
                            "NAD annotation {RESOURCE_NAME} {r}: the pod holds no unused device of it (the kubelet reports {held:?})"
                        ))
                    })?;
                    Some((r.clone(), id))
                }
                _ => None,
            };
            let config = self.nad_config(&nad).map_err(ctx)?;
            let d = Delegate::from_selection(
                &config,
                s,
                req,
                device.as_ref().map(|(r, id)| (r.as_str(), id.as_str())),
            )
            .map_err(|e| ctx(e.to_string()))?;
            out.push(d);
        }
        Ok(out)
    }

    // ----- the scratch cache -----

    fn scratch_file(&self, container_id: &str) -> PathBuf {
        self.cfg.cni_dir.join(container_id)
    }

    fn save_scratch(&self, delegates: &[Delegate]) -> Result<(), Failure> {
        let s = Scratch {
            pod_namespace: self.k8s.namespace.clone(),
            pod_name: self.k8s.name.clone(),
            infra_container_id: self.k8s.infra_container_id.clone(),
            pod_uid: self.k8s.uid.clone(),
            ifname: self.env.ifname.clone(),
            delegates: delegates.to_vec(),
        };
        let path = self.scratch_file(&self.env.container_id);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.cfg.cni_dir)?;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(&s).map_err(std::io::Error::other)?)?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            fail(format!(
                "pod {}: cannot save the delegates to {}: {e}",
                self.k8s.pod(),
                path.display()
            ))
        })
    }

    fn load_scratch(&self, container_id: &str) -> Option<Scratch> {
        let text = std::fs::read(self.scratch_file(container_id)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    // ----- ADD -----

    fn device_info_file(&self, d: &Delegate, ifname: &str) -> Option<PathBuf> {
        d.device_id.as_ref()?;
        Some(delegate::cni_device_info_file(
            &self.cfg.device_info_dir,
            d,
            &self.env.container_id,
            ifname,
        ))
    }

    /// Copies the device plugin's device-info file to the delegate's (best effort, as Multus).
    fn copy_device_info(&self, d: &Delegate, to: &std::path::Path) {
        let (Some(resource), Some(id)) = (&d.resource_name, &d.device_id) else {
            return;
        };
        let from = delegate::dp_device_info_file(&self.cfg.device_info_dir, resource, id);
        if let Ok(bytes) = std::fs::read(&from) {
            if let Some(dir) = to.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if !to.exists() {
                let _ = std::fs::write(to, bytes);
            }
        }
    }

    async fn add(&self) -> Result<Value, Failure> {
        self.wait_readiness().await?;
        let client = self.client().await?;
        let pod = self.k8s.pod();
        // The pod as read here, kept for the network-status update (no second GET).
        let mut read = None;
        let annotations = match (&self.cfg.pod_annotations, &client) {
            (Some(a), _) => a.clone(),
            (None, Some(c)) => {
                let p = kube_api::pod(c, &self.k8s.namespace, &self.k8s.name)
                    .await
                    .map_err(|e| fail(format!("pod {pod}: {e}")))?;
                let Some(p) = p else {
                    // As Multus: a pod deleted before its sandbox got a network gets an empty result.
                    self.log
                        .verbose(&format!("pod {pod} not found during ADD: empty result"));
                    return Ok(self.empty_result());
                };
                let uid = p.metadata.uid.clone().unwrap_or_default();
                if !self.k8s.uid.is_empty() && uid != self.k8s.uid {
                    return Err(fail(format!(
                        "pod {pod}: expected pod UID {:?} but got {uid:?} from the API",
                        self.k8s.uid
                    )));
                }
                let annotations = p.metadata.annotations.clone().unwrap_or_default();
                read = Some(p);
                annotations
            }
            (None, None) => BTreeMap::new(),
        };
        let mut delegates = self
            .default_delegates(client.as_ref(), &annotations)
            .await
            .map_err(fail)?;
        delegates.extend(
            self.selected(client.as_ref(), &annotations, true)
                .await
                .map_err(fail)?,
        );
        // Before anything is attached, as Multus checks it while loading the delegates.
        let route_changes = default_route::plan(&delegates, &pod).map_err(|e| fail(e.to_string()))?;
        self.save_scratch(&delegates)?;

        let mut pod_result: Option<Value> = None;
        let mut statuses = Vec::new();
        for (idx, d) in delegates.iter().enumerate() {
            let ifname = delegate::ifname(d, idx, &self.env.ifname);
            let devinfo = self.device_info_file(d, &ifname);
            if let Some(f) = &devinfo {
                self.copy_device_info(d, f);
            }
            let caps = delegate::capability_args(&self.cfg.runtime_config, d, devinfo.as_deref());
            let args = delegate::cni_args(&self.k8s, &self.runtime_args, d, true);
            let t = Target {
                container_id: &self.env.container_id,
                netns: &self.env.netns,
                ifname: &ifname,
                args: &args,
            };
            let r = match self.runner.add(d, &caps, &t) {
                Ok(r) => r,
                Err(e) => {
                    // Undo what was added, this one included; DEL is idempotent.
                    let _ = self.del_range(&delegates, idx);
                    return Err(fail(format!(
                        "pod {pod}: network {} (interface {ifname}): {e}",
                        d.name
                    )));
                }
            };
            self.log
                .verbose(&format!("ADD pod {pod}: {} as {ifname}: {r}", d.name));
            if let Some(change) = route_changes.get(idx).filter(|c| !c.is_noop())
                && default_route::applies(&r)
            {
                if let Err(e) = routes::apply(&self.env.netns, &ifname, change) {
                    let _ = self.del_range(&delegates, idx);
                    return Err(fail(format!(
                        "pod {pod}: network {} (interface {ifname}): default-route: {e}",
                        d.name
                    )));
                }
                if !self
                    .runner
                    .rewrite_cached_result(d, &t, |c| default_route::rewrite_result(c, change))
                {
                    self.log.error(&format!(
                        "ADD pod {pod}: {} as {ifname}: no cached result to rewrite the default routes in",
                        d.name
                    ));
                }
                self.log.verbose(&format!(
                    "ADD pod {pod}: {} as {ifname}: default routes: deleted v4 {} v6 {}, added {:?}",
                    d.name, change.delete_v4, change.delete_v6, change.add
                ));
            }
            let dev: Option<DeviceInfo> = devinfo
                .and_then(|f| std::fs::read(f).ok())
                .and_then(|b| serde_json::from_slice(&b).ok());
            statuses.extend(status::statuses(&r, &d.name, d.master, dev.as_ref()));
            if d.master || pod_result.is_none() {
                pod_result = Some(r);
            }
        }
        if let Some(c) = &client {
            let text = status::render(&statuses);
            let written = kube_api::set_network_status(
                c,
                &self.k8s.namespace,
                &self.k8s.name,
                &self.k8s.uid,
                &text,
                read,
            )
            .await
            .map_err(|e| {
                let _ = self.del_range(&delegates, delegates.len().saturating_sub(1));
                fail(format!("pod {pod}: error setting the network status: {e}"))
            })?;
            if !written {
                self.log
                    .verbose(&format!("pod {pod} gone: network status not written"));
            }
        }
        let r = pod_result.unwrap_or_else(|| json!({}));
        Ok(result::convert(r, &self.cfg.cni_version))
    }

    fn empty_result(&self) -> Value {
        let mut r = json!({
            "cniVersion": self.cfg.cni_version,
            "interfaces": [{"name": self.env.ifname, "sandbox": self.env.netns}],
            "ips": [{"address": "0.0.0.0/0", "gateway": "0.0.0.0"}],
        });
        if !result::version_at_least(&self.cfg.cni_version, "1.0.0") {
            r["ips"][0]["version"] = json!("4");
        }
        r
    }

    // ----- DEL -----

    /// DEL of `delegates[..=last]` in reverse; every one is tried, the errors collected.
    fn del_range(&self, delegates: &[Delegate], last: usize) -> Vec<String> {
        self.del_with(
            delegates,
            last,
            &self.k8s,
            &self.env.container_id,
            &self.env.netns,
            &self.env.ifname,
        )
    }

    fn del_with(
        &self,
        delegates: &[Delegate],
        last: usize,
        k8s: &K8sArgs,
        container_id: &str,
        netns: &str,
        cni_ifname: &str,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        for idx in (0..=last.min(delegates.len().saturating_sub(1))).rev() {
            let Some(d) = delegates.get(idx) else { continue };
            let ifname = delegate::ifname(d, idx, cni_ifname);
            let devinfo = d
                .device_id
                .as_ref()
                .map(|_| delegate::cni_device_info_file(&self.cfg.device_info_dir, d, container_id, &ifname));
            let caps = delegate::capability_args(&self.cfg.runtime_config, d, devinfo.as_deref());
            let args = delegate::cni_args(k8s, &self.runtime_args, d, false);
            let t = Target {
                container_id,
                netns,
                ifname: &ifname,
                args: &args,
            };
            if let Err(e) = self.runner.del(d, &caps, &t) {
                errors.push(format!("network {} (interface {ifname}): {e}", d.name));
            }
            if let Some(f) = devinfo {
                let _ = std::fs::remove_file(f);
            }
        }
        errors
    }

    /// The delegates to DEL when ADD left no cache: rebuilt from the pod when it still exists,
    /// else the default network alone.
    async fn delegates_without_cache(&self) -> Vec<Delegate> {
        let client = self.client().await.ok().flatten();
        let mut annotations = BTreeMap::new();
        if let Some(c) = &client
            && let Ok(Some(p)) = kube_api::pod(c, &self.k8s.namespace, &self.k8s.name).await
            && (self.k8s.uid.is_empty() || p.metadata.uid.as_deref() == Some(self.k8s.uid.as_str()))
        {
            annotations = p.metadata.annotations.unwrap_or_default();
        }
        let mut out = match self.default_delegates(client.as_ref(), &annotations).await {
            Ok(d) => d,
            Err(e) => {
                self.log.error(&format!("DEL pod {}: {e}", self.k8s.pod()));
                return Vec::new();
            }
        };
        match self.selected(client.as_ref(), &annotations, false).await {
            Ok(s) => out.extend(s),
            Err(e) => self.log.error(&format!(
                "DEL pod {}: {e}; deleting the default network only",
                self.k8s.pod()
            )),
        }
        out
    }

    async fn del(&self) -> Result<(), Failure> {
        let cached = self.load_scratch(&self.env.container_id);
        let delegates = match &cached {
            Some(s) => s.delegates.clone(),
            None => self.delegates_without_cache().await,
        };
        let errors = self.del_range(&delegates, delegates.len().saturating_sub(1));
        if !errors.is_empty() {
            // The cache stays, so the runtime's retry deletes what is left.
            return Err(fail(format!(
                "pod {}: DEL errors: {}",
                self.k8s.pod(),
                errors.join(" / ")
            )));
        }
        let _ = std::fs::remove_file(self.scratch_file(&self.env.container_id));
        Ok(())
    }

    // ----- CHECK, STATUS, GC -----

    fn check(&self) -> Result<(), Failure> {
        let s = self.load_scratch(&self.env.container_id).ok_or_else(|| Failure {
            code: 3,
            msg: format!(
                "pod {}: no cached delegates for container {}",
                self.k8s.pod(),
                self.env.container_id
            ),
        })?;
        for (idx, d) in s.delegates.iter().enumerate() {
            let ifname = delegate::ifname(d, idx, &self.env.ifname);
            let devinfo = self.device_info_file(d, &ifname);
            let caps = delegate::capability_args(&self.cfg.runtime_config, d, devinfo.as_deref());
            let args = delegate::cni_args(&self.k8s, &self.runtime_args, d, false);
            let t = Target {
                container_id: &self.env.container_id,
                netns: &self.env.netns,
                ifname: &ifname,
                args: &args,
            };
            self.runner.check(d, &caps, &t).map_err(|e| {
                fail(format!(
                    "pod {}: network {} (interface {ifname}): {e}",
                    self.k8s.pod(),
                    d.name
                ))
            })?;
        }
        Ok(())
    }

    async fn forward(&self, command: &str, extra: Map<String, Value>) -> Result<(), Failure> {
        self.wait_readiness().await?;
        let client = self.client().await?;
        let defaults = self
            .default_delegates(client.as_ref(), &BTreeMap::new())
            .await
            .map_err(fail)?;
        self.runner.forward(command, &defaults[0], &extra).map_err(|e| {
            fail(format!(
                "{command} of the default network {}: {e}",
                defaults[0].name
            ))
        })
    }

    /// GC: the default network gets the runtime's valid attachments; every attachment this
    /// plugin cached that is not valid any more is deleted (all its delegates).
    async fn gc(&self) -> Result<(), Failure> {
        let key = "cni.dev/valid-attachments";
        let valid: Vec<(String, String)> =
            self.raw
                .get(key)
                .and_then(Value::as_array)
                .map_or_else(Vec::new, |a| {
                    a.iter()
                        .filter_map(|v| {
                            Some((
                                v["containerID"].as_str()?.to_string(),
                                v["ifname"].as_str()?.to_string(),
                            ))
                        })
                        .collect()
                });
        let mut errors = Vec::new();
        for entry in std::fs::read_dir(&self.cfg.cni_dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
        {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().is_file() || id.ends_with(".tmp") || valid.iter().any(|(c, _)| *c == id) {
                continue;
            }
            let Some(s) = self.load_scratch(&id) else { continue };
            let k8s = K8sArgs {
                namespace: s.pod_namespace.clone(),
                name: s.pod_name.clone(),
                infra_container_id: s.infra_container_id.clone(),
                uid: s.pod_uid.clone(),
            };
            let errs = self.del_with(
                &s.delegates,
                s.delegates.len().saturating_sub(1),
                &k8s,
                &id,
                "",
                &s.ifname,
            );
            if errs.is_empty() {
                let _ = std::fs::remove_file(entry.path());
            }
            errors.extend(errs);
        }
        let mut extra = Map::new();
        extra.insert(
            key.into(),
            self.raw.get(key).cloned().unwrap_or_else(|| json!([])),
        );
        self.forward("GC", extra).await?;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(fail(format!("GC: {}", errors.join(" / "))))
        }
    }
}
