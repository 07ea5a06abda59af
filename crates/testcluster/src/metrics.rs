//! The API server's own count of the requests it served (`apiserver_request_total` on
//! `/metrics`): how tests and benchmarks count the API calls a component makes, with the
//! apiserver as the judge rather than the component's own bookkeeping.

use std::collections::BTreeMap;

/// `apiserver_request_total` from the API server's `/metrics`, summed per (verb, resource),
/// subresource appended as `resource/subresource`.
pub async fn request_counts(client: &kube::Client) -> BTreeMap<(String, String), u64> {
    let req = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("a GET request");
    let text = client.request_text(req).await.expect("the apiserver's /metrics");
    parse_request_counts(&text)
}

pub fn parse_request_counts(text: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let label = |k: &str| {
            let key = format!("{k}=\"");
            labels
                .split(&key)
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("")
                .to_string()
        };
        let mut resource = label("resource");
        let sub = label("subresource");
        if !sub.is_empty() {
            resource = format!("{resource}/{sub}");
        }
        let n = value.parse::<f64>().unwrap_or(0.0) as u64;
        *out.entry((label("verb"), resource)).or_insert(0) += n;
    }
    out
}

/// `after - before`, zero entries left out.
pub fn delta(
    before: &BTreeMap<(String, String), u64>,
    after: &BTreeMap<(String, String), u64>,
) -> BTreeMap<(String, String), u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as kube-apiserver v1.36 writes them: counts per code and component are summed,
    /// the subresource joins the resource, other metrics are ignored.
    #[test]
    fn counts_are_summed_per_verb_and_resource() {
        let text = r#"# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="GET",version="v1"} 3
apiserver_request_total{code="404",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="GET",version="v1"} 2
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PUT",version="v1"} 1
apiserver_request_duration_seconds_count{resource="pods",verb="GET"} 9
"#;
        let counts = parse_request_counts(text);
        let key = |v: &str, r: &str| (v.to_string(), r.to_string());
        assert_eq!(counts.len(), 2, "{counts:?}");
        assert_eq!(counts[&key("GET", "pods")], 5);
        assert_eq!(counts[&key("PUT", "pods/status")], 1);
        let after = BTreeMap::from([(key("GET", "pods"), 7), (key("PUT", "pods/status"), 1)]);
        assert_eq!(delta(&counts, &after), BTreeMap::from([(key("GET", "pods"), 2)]));
    }
}
