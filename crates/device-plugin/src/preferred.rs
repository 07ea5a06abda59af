//! `GetPreferredAllocation` (upstream offers none). The policy, in order:
//!
//! 1. every `must_include` device (the kubelet requires them);
//! 2. **same NUMA node**: the node most of the required devices are on, else the node with the most
//!    available devices, so the pod's VFs sit next to each other (and next to the CPUs the topology
//!    manager picks) and a later request still finds a whole node free;
//! 3. **spread across PFs** within that: each next device comes from the PF that has given the
//!    fewest devices to this request so far, so a pod asking for 2 VFs gets 2 ports (link
//!    redundancy for bonding, twice the PF bandwidth) instead of 2 VFs behind one cable;
//! 4. ties broken by PCI address, so the answer is deterministic.
//!
//! The kubelet treats the answer as a hint: a `None`/short answer is always safe.

use std::collections::HashMap;

use crate::pool::Pool;

/// The preferred IDs for one container request.
pub fn preferred(pool: &Pool, available: &[String], must_include: &[String], size: usize) -> Vec<String> {
    let numa = |id: &str| pool.get(id).and_then(|d| d.device.numa_node);
    let pf = |id: &str| {
        pool.get(id)
            .and_then(|d| d.device.pf_address.clone())
            .unwrap_or_default()
    };

    let mut chosen: Vec<String> = Vec::new();
    for id in must_include {
        if !chosen.contains(id) {
            chosen.push(id.clone());
        }
    }
    let mut rest: Vec<&String> = available.iter().filter(|id| !chosen.contains(id)).collect();
    rest.sort();
    rest.dedup();

    let mut votes: HashMap<i64, usize> = HashMap::new();
    let counted: Vec<&String> = if chosen.is_empty() {
        rest.clone()
    } else {
        chosen.iter().collect()
    };
    for id in counted {
        if let Some(n) = numa(id) {
            *votes.entry(n).or_default() += 1;
        }
    }
    let target = votes
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(n, _)| n);

    let mut per_pf: HashMap<String, usize> = HashMap::new();
    for id in &chosen {
        *per_pf.entry(pf(id)).or_default() += 1;
    }
    while chosen.len() < size && !rest.is_empty() {
        let best = rest
            .iter()
            .enumerate()
            .min_by_key(|(_, id)| {
                let off_node = target.is_some() && numa(id) != target;
                (
                    off_node,
                    per_pf.get(&pf(id)).copied().unwrap_or(0),
                    String::clone(id),
                )
            })
            .map(|(i, _)| i);
        let Some(i) = best else { break };
        let id = rest.remove(i).clone();
        *per_pf.entry(pf(&id)).or_default() += 1;
        chosen.push(id);
    }
    chosen
}
