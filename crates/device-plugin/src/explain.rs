//! `sriovctl explain`: for every device, which pool took it, or for each pool the first selector
//! check that rejected it and why. Answers "why is my resource count 0?" without reading code.

use serde::Serialize;

use crate::config::Config;
use crate::device::{Device, DeviceClass};
use crate::pool::{assign, candidate};
use crate::selector::evaluate;

/// What one pool made of one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Verdict {
    /// This pool took the device, through `selectors[selector]`.
    Taken { selector: usize },
    /// The device is not of this pool's device type (or is a PF with VFs, or unbound).
    NotCandidate { reason: String },
    /// Every selector object rejected it; the first failing check of each.
    Rejected { selectors: Vec<String> },
    /// A selector matched, but an earlier pool had already taken the device.
    TakenEarlier { by: String, selector: usize },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolVerdict {
    pub resource: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceReport {
    pub id: String,
    pub summary: String,
    /// The resource that took it, if any.
    pub pool: Option<String>,
    pub pools: Vec<PoolVerdict>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSummary {
    pub resource: String,
    pub device_type: String,
    pub devices: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub pools: Vec<PoolSummary>,
    pub devices: Vec<DeviceReport>,
    pub warnings: Vec<String>,
}

fn summary(d: &Device) -> String {
    let mut s = format!("{}:{} driver {}", d.vendor, d.device, d.driver_str());
    if let Some(n) = &d.netdev {
        s += &format!(", netdev {n}");
    }
    match (d.class, &d.pf_name, &d.pf_address, d.index) {
        (Some(DeviceClass::Aux), pf, _, i) => {
            s += &format!(
                ", SF {} of {}",
                i.map_or("?".into(), |i| i.to_string()),
                pf.as_deref().unwrap_or("?")
            )
        }
        (_, pf, Some(pa), i) => {
            s += &format!(
                ", VF {} of {} ({pa})",
                i.map_or("?".into(), |i| i.to_string()),
                pf.as_deref().unwrap_or("?")
            );
        }
        _ if d.pf_with_vfs => s += ", PF with VFs",
        _ => s += ", PF",
    }
    if let Some(n) = d.numa_node {
        s += &format!(", NUMA {n}");
    }
    s
}

/// Explains `config` over `devices`.
pub fn explain(config: &Config, devices: &[Device]) -> Explanation {
    let placed = assign(config, devices);
    let names: Vec<String> = config.resources.iter().map(|r| r.full_name()).collect();
    let mut pools: Vec<PoolSummary> = config
        .resources
        .iter()
        .map(|r| PoolSummary {
            resource: r.full_name(),
            device_type: r.device_type.to_string(),
            devices: Vec::new(),
        })
        .collect();
    let mut reports = Vec::new();
    for (dev, slot) in devices.iter().zip(&placed) {
        if let Some((ri, _)) = slot {
            pools[*ri].devices.push(dev.id.clone());
        }
        let verdicts = config
            .resources
            .iter()
            .enumerate()
            .map(|(ri, res)| {
                let verdict = match (slot, candidate(res.device_type, dev)) {
                    (Some((r, s)), _) if *r == ri => Verdict::Taken { selector: *s },
                    (_, Err(rej)) => Verdict::NotCandidate {
                        reason: rej.to_string(),
                    },
                    (slot, Ok(())) => {
                        let results: Vec<_> = res
                            .selectors
                            .iter()
                            .map(|s| evaluate(res.device_type, s, dev))
                            .collect();
                        match (results.iter().position(Result::is_ok), slot) {
                            (Some(si), Some((r, _))) => Verdict::TakenEarlier {
                                by: names[*r].clone(),
                                selector: si,
                            },
                            _ => Verdict::Rejected {
                                selectors: results
                                    .into_iter()
                                    .enumerate()
                                    .filter_map(|(i, r)| r.err().map(|e| format!("selectors[{i}]: {e}")))
                                    .collect(),
                            },
                        }
                    }
                };
                PoolVerdict {
                    resource: names[ri].clone(),
                    verdict,
                }
            })
            .collect();
        reports.push(DeviceReport {
            id: dev.id.clone(),
            summary: summary(dev),
            pool: slot.map(|(r, _)| names[r].clone()),
            pools: verdicts,
        });
    }
    Explanation {
        pools,
        devices: reports,
        warnings: config.warnings.clone(),
    }
}

/// The human-readable form.
pub fn render_text(e: &Explanation) -> String {
    let mut out = String::from("POOLS\n");
    let width = e.pools.iter().map(|p| p.resource.len()).max().unwrap_or(0);
    for p in &e.pools {
        let n = p.devices.len();
        let list = if n == 0 {
            "(no server: nothing advertised; see the devices below)".to_string()
        } else {
            p.devices.join(" ")
        };
        out += &format!(
            "  {:<width$}  {:>3} {:<7}  {list}\n",
            p.resource,
            n,
            if n == 1 { "device" } else { "devices" }
        );
    }
    for w in &e.warnings {
        out += &format!("  warning: {w}\n");
    }
    out += "\nDEVICES\n";
    for d in &e.devices {
        let head = match &d.pool {
            Some(p) => format!("→ {p}"),
            None => "→ no pool".to_string(),
        };
        out += &format!("  {}  {}  ({})\n", d.id, head, d.summary);
        for v in &d.pools {
            let line = match &v.verdict {
                Verdict::Taken { selector } => format!("taken by selectors[{selector}]"),
                Verdict::NotCandidate { reason } => format!("not a candidate: {reason}"),
                Verdict::Rejected { selectors } => selectors.join("; "),
                Verdict::TakenEarlier { by, selector } => {
                    format!("selectors[{selector}] matches, but {by} took it first")
                }
            };
            out += &format!("      {}: {line}\n", v.resource);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{pf, vf, with};

    #[test]
    fn explains_every_outcome() {
        let devices = vec![
            pf("0000:01:00.0", "eth0", true),
            vf("0000:01:10.0", "eth0", "0000:01:00.0", 0),
            with(vf("0000:01:10.2", "eth0", "0000:01:00.0", 1), |d| {
                d.driver = Some("vfio-pci".into())
            }),
        ];
        let c = Config::parse(
            r#"{"resourceList":[
              {"resourceName":"dpdk","selectors":[{"drivers":["vfio-pci"]},{"pfNames":["eth1"]}]},
              {"resourceName":"any","selectors":{}}]}"#,
            "intel.com",
        )
        .expect("valid");
        let e = explain(&c, &devices);
        assert_eq!(e.pools[0].devices, ["0000:01:10.2"]);
        assert_eq!(e.pools[1].devices, ["0000:01:10.0"]);
        let vf0 = &e.devices[1];
        assert_eq!(vf0.pool.as_deref(), Some("intel.com/any"));
        assert_eq!(
            vf0.pools[0].verdict,
            Verdict::Rejected {
                selectors: vec![
                    "selectors[0]: drivers: igbvf not in [vfio-pci]".into(),
                    "selectors[1]: pfNames: eth0 not in [eth1]".into()
                ]
            }
        );
        assert_eq!(
            e.devices[2].pools[1].verdict,
            Verdict::TakenEarlier {
                by: "intel.com/dpdk".into(),
                selector: 0
            }
        );
        assert!(
            matches!(&e.devices[0].pools[0].verdict, Verdict::NotCandidate { reason } if reason.contains("PF that has VFs"))
        );
        let text = render_text(&e);
        assert!(text.contains("drivers: igbvf not in [vfio-pci]"), "{text}");
        assert!(text.contains("0000:01:10.0  → intel.com/any"), "{text}");
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["devices"][1]["pools"][0]["outcome"], "rejected");
    }
}
