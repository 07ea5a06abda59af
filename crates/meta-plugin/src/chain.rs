//! One delegate's plugin chain run as libcni runs a config list: ADD in order with each
//! plugin's result as the next one's `prevResult`, the final result cached (under
//! `<cniDir>/results/`, libcni's layout) so DEL and CHECK get it back as `prevResult`; DEL in
//! reverse order.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::delegate::{Delegate, cni_version, net_name, plugin_confs};
use crate::exec::{self, Call, PluginError};
use crate::result::version_at_least;

/// Where and how delegates run.
#[derive(Clone, Debug)]
pub struct Runner {
    /// `binDir`, then the runtime's `CNI_PATH` dirs.
    pub bin_dirs: Vec<PathBuf>,
    /// `cniDir`: the result cache lives in `results/` below it.
    pub cni_dir: PathBuf,
    /// The meta config's `cniVersion`, for delegates that name none.
    pub fallback_version: String,
}

/// Where one attachment goes.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    pub args: &'a str,
}

impl Runner {
    fn cni_path(&self) -> String {
        self.bin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    fn version<'a>(&'a self, d: &'a Delegate) -> &'a str {
        match cni_version(&d.conf) {
            "" => &self.fallback_version,
            v => v,
        }
    }

    /// libcni's cache file of one attachment.
    pub fn result_file(&self, d: &Delegate, t: &Target) -> PathBuf {
        self.cni_dir
            .join("results")
            .join(format!("{}-{}-{}", net_name(&d.conf), t.container_id, t.ifname))
    }

    fn call<'a>(&self, command: &'a str, t: &'a Target) -> Call<'a> {
        Call {
            command,
            container_id: t.container_id,
            netns: t.netns,
            ifname: t.ifname,
            args: t.args,
        }
    }

    fn run(&self, conf: &Value, call: &Call) -> Result<Option<Value>, PluginError> {
        let plugin = conf["type"].as_str().unwrap_or_default();
        exec::run(&self.bin_dirs, &self.cni_path(), plugin, call, conf)
    }

    /// ADD through the chain; the last plugin's result.
    pub fn add(&self, d: &Delegate, caps: &Map<String, Value>, t: &Target) -> Result<Value, PluginError> {
        let mut prev: Option<Value> = None;
        for mut conf in plugin_confs(d, caps, &self.fallback_version) {
            if let (Some(p), Some(o)) = (&prev, conf.as_object_mut()) {
                o.insert("prevResult".into(), p.clone());
            }
            let plugin = conf["type"].as_str().unwrap_or_default().to_string();
            prev = Some(
                self.run(&conf, &self.call("ADD", t))?
                    .ok_or(PluginError::BadOutput {
                        plugin,
                        command: "ADD".into(),
                        text: String::new(),
                    })?,
            );
        }
        let result = prev.unwrap_or_else(|| json!({"cniVersion": self.version(d)}));
        self.cache(d, caps, t, &result);
        Ok(result)
    }

    fn cache(&self, d: &Delegate, caps: &Map<String, Value>, t: &Target, result: &Value) {
        let file = self.result_file(d, t);
        let entry = json!({
            "kind": "cniCacheV1",
            "containerId": t.container_id,
            "ifName": t.ifname,
            "networkName": net_name(&d.conf),
            "cniArgs": t.args,
            "capabilityArgs": caps,
            "result": result,
        });
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Without the cache DEL still runs (without prevResult), so a write failure is not fatal.
        let _ = std::fs::write(&file, entry.to_string());
    }

    /// The cached ADD result of one attachment.
    pub fn cached_result(&self, d: &Delegate, t: &Target) -> Option<Value> {
        let text = std::fs::read_to_string(self.result_file(d, t)).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v.get("result").filter(|r| r.is_object()).cloned()
    }

    /// Replaces the cached ADD result of one attachment with `f` of it (what CHECK and DEL
    /// will get as `prevResult`); `false` when there is no cache to rewrite.
    pub fn rewrite_cached_result(&self, d: &Delegate, t: &Target, f: impl FnOnce(&Value) -> Value) -> bool {
        let file = self.result_file(d, t);
        let Some(mut entry) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .filter(|v| v["result"].is_object())
        else {
            return false;
        };
        entry["result"] = f(&entry["result"]);
        std::fs::write(&file, entry.to_string()).is_ok()
    }

    /// DEL through the chain in reverse, with the cached result as `prevResult` (0.4.0+).
    pub fn del(&self, d: &Delegate, caps: &Map<String, Value>, t: &Target) -> Result<(), PluginError> {
        let prev = version_at_least(self.version(d), "0.4.0")
            .then(|| self.cached_result(d, t))
            .flatten();
        for mut conf in plugin_confs(d, caps, &self.fallback_version).into_iter().rev() {
            if let (Some(p), Some(o)) = (&prev, conf.as_object_mut()) {
                o.insert("prevResult".into(), p.clone());
            }
            self.run(&conf, &self.call("DEL", t))?;
        }
        let _ = std::fs::remove_file(self.result_file(d, t));
        Ok(())
    }

    /// CHECK through the chain (0.4.0+; a delegate without a cached result fails).
    pub fn check(&self, d: &Delegate, caps: &Map<String, Value>, t: &Target) -> Result<(), PluginError> {
        if !version_at_least(self.version(d), "0.4.0") {
            return Ok(());
        }
        let prev = self.cached_result(d, t).ok_or_else(|| PluginError::Failed {
            plugin: net_name(&d.conf).to_string(),
            command: "CHECK".into(),
            code: 3,
            msg: format!("no cached result in {}", self.result_file(d, t).display()),
            details: String::new(),
        })?;
        for mut conf in plugin_confs(d, caps, &self.fallback_version) {
            if let Some(o) = conf.as_object_mut() {
                o.insert("prevResult".into(), prev.clone());
            }
            self.run(&conf, &self.call("CHECK", t))?;
        }
        Ok(())
    }

    /// STATUS or GC (1.1.0+ only; older delegates have neither) to every plugin of the chain;
    /// `extra` is merged into each config (GC's `cni.dev/valid-attachments`).
    pub fn forward(
        &self,
        command: &str,
        d: &Delegate,
        extra: &Map<String, Value>,
    ) -> Result<(), PluginError> {
        if !version_at_least(self.version(d), "1.1.0") {
            return Ok(());
        }
        let t = Target {
            container_id: "",
            netns: "",
            ifname: "",
            args: "",
        };
        for mut conf in plugin_confs(d, &Map::new(), &self.fallback_version) {
            if let Some(o) = conf.as_object_mut() {
                o.extend(extra.clone());
            }
            self.run(&conf, &self.call(command, &t))?;
        }
        Ok(())
    }
}

/// The cached attachments (`results/*`) of `cni_dir` as GC's valid-attachment pairs.
pub fn cached_attachments(cni_dir: &Path) -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir(cni_dir.join("results")) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .filter_map(|v| {
            Some((
                v["containerId"].as_str()?.to_string(),
                v["ifName"].as_str()?.to_string(),
            ))
        })
        .collect()
}
