#![allow(clippy::unwrap_used)]

use super::*;

fn settings() -> DeploySettings {
    DeploySettings {
        namespace: "sriov-network-operator".into(),
        resource_prefix: "openshift.io".into(),
        images: Images {
            sriov_cni: "example.org/sriov-cni:v1".into(),
            infiniband_cni: "example.org/ib-sriov-cni:v1".into(),
            device_plugin: "example.org/sriovdp:v1".into(),
            resources_injector: "example.org/nri:v1".into(),
            config_daemon: "example.org/daemon:v1".into(),
            webhook: "example.org/webhook:v1".into(),
        },
        cni_bin_path: "/opt/cni/bin".into(),
        cluster_type: "kubernetes".into(),
        dev_mode: "FALSE".into(),
        use_external_drainer: false,
        image_pull_secrets: vec![],
        ..Default::default()
    }
}

fn cas() -> CaBundles {
    CaBundles {
        injector: Some("INJECTOR CA".into()),
        operator_webhook: Some("WEBHOOK CA".into()),
    }
}

fn find<'a>(plan: &'a DeployPlan, kind: &str, name: &str) -> &'a Value {
    plan.apply
        .iter()
        .map(|(_, o)| o)
        .find(|o| ObjectKey::of(o).kind == kind && ObjectKey::of(o).name == name)
        .unwrap_or_else(|| panic!("{kind}/{name} not rendered"))
}

fn keys(plan: &DeployPlan) -> Vec<String> {
    plan.apply
        .iter()
        .map(|(_, o)| ObjectKey::of(o).to_string())
        .collect()
}

#[test]
fn default_spec_deploys_daemon_and_device_plugin_only() {
    let plan = render(&OperatorConfigSpec::default(), &settings(), &CaBundles::default()).unwrap();
    assert_eq!(
        keys(&plan),
        [
            "ServiceAccount/sriov-network-operator/sriov-network-config-daemon",
            "ClusterRole/sriov-network-config-daemon",
            "ClusterRoleBinding/sriov-network-config-daemon",
            "Role/sriov-network-operator/sriov-network-config-daemon",
            "RoleBinding/sriov-network-operator/sriov-network-config-daemon",
            "DaemonSet/sriov-network-operator/sriov-network-config-daemon",
            "ServiceAccount/sriov-network-operator/sriov-device-plugin",
            "DaemonSet/sriov-network-operator/sriov-device-plugin",
        ]
    );
    let deleted: Vec<String> = plan.delete.iter().map(|(_, k)| k.to_string()).collect();
    assert!(deleted.contains(&"DaemonSet/sriov-network-operator/network-resources-injector".to_string()));
    assert!(deleted.contains(&"MutatingWebhookConfiguration/network-resources-injector-config".to_string()));
    assert!(deleted.contains(&"Secret/sriov-network-operator/operator-webhook-secret".to_string()));
    assert!(deleted.contains(&"ValidatingWebhookConfiguration/sriov-operator-webhook-config".to_string()));
}

#[test]
fn config_daemon_daemonset_is_upstreams_shape() {
    let plan = render(&OperatorConfigSpec::default(), &settings(), &CaBundles::default()).unwrap();
    let ds = find(&plan, "DaemonSet", CONFIG_DAEMON);
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    assert_eq!(pod["tolerations"], json!([{"operator": "Exists"}]));
    assert_eq!(
        pod["nodeSelector"],
        json!({"kubernetes.io/os": "linux", "node-role.kubernetes.io/worker": ""})
    );
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(c["image"], "example.org/daemon:v1");
    assert_eq!(c["args"], json!(["start"]));
    assert_eq!(
        c["volumeMounts"][0],
        json!({"name": "host", "mountPath": "/host"})
    );
    assert_eq!(
        pod["volumes"][0],
        json!({"name": "host", "hostPath": {"path": "/"}})
    );
    assert_eq!(
        pod["volumes"][1],
        json!({"name": "cnibin", "hostPath": {"path": "/opt/cni/bin"}})
    );
    let inits: Vec<&str> = pod["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(inits, ["sriov-cni", "sriov-infiniband-cni"]);
    assert_eq!(pod["initContainers"][0]["image"], "example.org/sriov-cni:v1");
    assert_eq!(
        pod["initContainers"][0]["volumeMounts"][0]["mountPath"],
        "/host/opt/cni/bin"
    );
    let env: Vec<(String, String)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["value"].as_str().unwrap_or("<ref>").into(),
            )
        })
        .collect();
    assert_eq!(
        env,
        [
            ("NODE_NAME".into(), "<ref>".into()),
            ("NAMESPACE".into(), "<ref>".into()),
            ("CLUSTER_TYPE".into(), "kubernetes".into()),
            ("DEV_MODE".into(), "FALSE".into()),
        ]
    );
    assert_eq!(ds["metadata"]["labels"][CREATED_BY_LABEL], CREATED_BY_VALUE);
}

#[test]
fn empty_cni_bin_path_is_upstreams_default_and_empty_ib_image_drops_its_init_container() {
    let mut s = settings();
    s.cni_bin_path.clear();
    s.images.infiniband_cni.clear();
    let plan = render(&OperatorConfigSpec::default(), &s, &CaBundles::default()).unwrap();
    let pod = &find(&plan, "DaemonSet", CONFIG_DAEMON)["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][1]["hostPath"]["path"], DEFAULT_CNI_BIN_PATH);
    assert_eq!(pod["initContainers"].as_array().unwrap().len(), 1);
}

#[test]
fn node_selector_env_vars_gates_and_plugins_reach_the_daemon() {
    let spec = OperatorConfigSpec {
        config_daemon_node_selector: BTreeMap::from([("sriov".into(), "yes".into())]),
        config_daemon_env_vars: BTreeMap::from([("FOO".into(), "bar".into())]),
        disable_plugins: vec!["mellanox".into()],
        feature_gates: BTreeMap::from([
            (gates::PARALLEL_NIC_CONFIG.into(), true),
            (gates::MANAGE_SOFTWARE_BRIDGES.into(), true),
        ]),
        configuration_mode: "systemd".into(),
        ..Default::default()
    };
    let mut s = settings();
    s.use_external_drainer = true;
    s.image_pull_secrets = vec!["pull".into()];
    let plan = render(&spec, &s, &CaBundles::default()).unwrap();
    let pod = &find(&plan, "DaemonSet", CONFIG_DAEMON)["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"], json!({"sriov": "yes"}));
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "pull"}]));
    assert_eq!(
        pod["containers"][0]["args"],
        json!([
            "start",
            "--use-systemd-service",
            "--disable-plugins=mellanox",
            "--parallel-nic-config",
            "--manage-software-bridges"
        ])
    );
    let env = pod["containers"][0]["env"].as_array().unwrap();
    assert!(env.contains(&json!({"name": "FOO", "value": "bar"})));
    assert!(env.contains(&json!({"name": "USE_EXTERNAL_DRAINER", "value": "true"})));
    assert_eq!(pod["initContainers"][2]["name"], "sriov-service-copy");
    let dp = &find(&plan, "DaemonSet", DEVICE_PLUGIN)["spec"]["template"]["spec"];
    assert_eq!(
        dp["nodeSelector"],
        json!({"sriov": "yes", "sriovnetwork.openshift.io/device-plugin": "Enabled"})
    );
}

#[test]
fn device_plugin_daemonset_has_upstreams_args_and_selector() {
    let plan = render(&OperatorConfigSpec::default(), &settings(), &CaBundles::default()).unwrap();
    let pod = &find(&plan, "DaemonSet", DEVICE_PLUGIN)["spec"]["template"]["spec"];
    assert_eq!(
        pod["nodeSelector"],
        json!({"kubernetes.io/os": "linux", "sriovnetwork.openshift.io/device-plugin": "Enabled"})
    );
    assert_eq!(pod["containers"][0]["command"], json!(["sriovdp"]));
    assert_eq!(
        pod["containers"][0]["args"],
        json!([
            "--log-level=10",
            "--resource-prefix=openshift.io",
            "--config-file=/etc/pcidp/$(NODE_NAME)"
        ])
    );
    assert_eq!(pod["initContainers"], json!([]));
    assert_eq!(pod["volumes"][1]["configMap"]["name"], "device-plugin-config");

    let spec = OperatorConfigSpec {
        use_cdi: true,
        feature_gates: BTreeMap::from([(gates::BLOCK_DEVICE_PLUGIN_UNTIL_CONFIGURED.into(), true)]),
        ..Default::default()
    };
    let plan = render(&spec, &settings(), &CaBundles::default()).unwrap();
    let pod = &find(&plan, "DaemonSet", DEVICE_PLUGIN)["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["args"][3], "--use-cdi");
    assert_eq!(pod["volumes"][3]["name"], "dynamic-cdi");
    assert_eq!(pod["initContainers"][0]["args"], json!(["wait-for-config"]));
}

#[test]
fn enabled_webhooks_need_their_ca_and_carry_it_base64() {
    let spec = OperatorConfigSpec {
        enable_injector: true,
        enable_operator_webhook: true,
        ..Default::default()
    };
    assert_eq!(
        render(&spec, &settings(), &CaBundles::default()),
        Err(ManifestError::MissingCa {
            component: Component::Injector,
            secret: INJECTOR_SECRET.into()
        })
    );
    let plan = render(&spec, &settings(), &cas()).unwrap();
    assert!(plan.delete.is_empty());
    let nri = find(
        &plan,
        "MutatingWebhookConfiguration",
        "network-resources-injector-config",
    );
    assert_eq!(nri["webhooks"][0]["clientConfig"]["caBundle"], "SU5KRUNUT1IgQ0E=");
    assert_eq!(nri["webhooks"][0]["failurePolicy"], "Ignore");
    assert_eq!(
        nri["webhooks"][0]["clientConfig"]["service"]["namespace"],
        "sriov-network-operator"
    );
    assert!(nri["webhooks"][0].get("matchConditions").is_none());
    let validating = find(
        &plan,
        "ValidatingWebhookConfiguration",
        "sriov-operator-webhook-config",
    );
    assert_eq!(
        validating["webhooks"][0]["clientConfig"]["caBundle"],
        "V0VCSE9PSyBDQQ=="
    );
    assert_eq!(validating["webhooks"][0]["failurePolicy"], "Fail");
    let webhook = find(&plan, "DaemonSet", OPERATOR_WEBHOOK);
    assert_eq!(
        webhook["spec"]["template"]["spec"]["containers"][0]["env"][1],
        json!({"name": "DEV_MODE", "value": "FALSE"})
    );
    find(&plan, "Service", INJECTOR_SERVICE);
    find(&plan, "Service", OPERATOR_WEBHOOK_SERVICE);
    find(&plan, "ConfigMap", "nri-control-switches");
}

#[test]
fn match_condition_gate_makes_the_injector_fail_closed_on_annotated_pods_only() {
    let spec = OperatorConfigSpec {
        enable_injector: true,
        feature_gates: BTreeMap::from([(gates::RESOURCE_INJECTOR_MATCH_CONDITION.into(), true)]),
        ..Default::default()
    };
    let plan = render(&spec, &settings(), &cas()).unwrap();
    let hook = &find(
        &plan,
        "MutatingWebhookConfiguration",
        "network-resources-injector-config",
    )["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["matchConditions"][0]["name"], "include-networks-annotation");
    assert_eq!(
        hook["matchConditions"][0]["expression"],
        "has(object.metadata.annotations) && \"k8s.v1.cni.cncf.io/networks\" in object.metadata.annotations"
    );
}

#[test]
fn no_rbac_rule_grants_a_wildcard() {
    let spec = OperatorConfigSpec {
        enable_injector: true,
        enable_operator_webhook: true,
        ..Default::default()
    };
    let plan = render(&spec, &settings(), &cas()).unwrap();
    let mut rules = 0;
    for (_, o) in &plan.apply {
        for rule in o.get("rules").and_then(Value::as_array).into_iter().flatten() {
            rules += 1;
            for field in ["verbs", "resources", "apiGroups"] {
                assert!(
                    !rule[field].as_array().unwrap().contains(&json!("*")),
                    "{}: {rule}",
                    ObjectKey::of(o)
                );
            }
        }
    }
    assert!(rules >= 6, "{rules} rules");
}

#[test]
fn hash_changes_with_inputs_and_rendering_is_deterministic() {
    let a = render(&OperatorConfigSpec::default(), &settings(), &CaBundles::default()).unwrap();
    let b = render(&OperatorConfigSpec::default(), &settings(), &CaBundles::default()).unwrap();
    assert_eq!(a, b);
    let mut s = settings();
    s.images.config_daemon = "example.org/daemon:v2".into();
    let c = render(&OperatorConfigSpec::default(), &s, &CaBundles::default()).unwrap();
    let h = |p: &DeployPlan| {
        find(p, "DaemonSet", CONFIG_DAEMON)["metadata"]["annotations"][DESIRED_HASH_ANNOTATION].clone()
    };
    assert_ne!(h(&a), h(&c));
    let dp = |p: &DeployPlan| find(p, "DaemonSet", DEVICE_PLUGIN).clone();
    assert_eq!(dp(&a), dp(&c));
}

#[test]
fn needs_apply_ignores_server_defaults_but_not_edits_or_dropped_keys() {
    let plan = render(&OperatorConfigSpec::default(), &settings(), &CaBundles::default()).unwrap();
    let desired = find(&plan, "DaemonSet", DEVICE_PLUGIN).clone();
    assert!(needs_apply(&desired, None));
    // what the apiserver returns: defaults added, omitempty zero values dropped
    let mut live = desired.clone();
    live["metadata"]["uid"] = json!("x");
    live["spec"]["template"]["spec"]["dnsPolicy"] = json!("ClusterFirst");
    live["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("initContainers");
    live["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]
        .as_object_mut()
        .unwrap()
        .remove("readOnly");
    live["status"] = json!({"numberReady": 0});
    assert!(!needs_apply(&desired, Some(&live)));
    // a hand edit of a field the operator sets
    let mut edited = live.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil");
    assert!(needs_apply(&desired, Some(&edited)));
    // a key the new render drops: only the hash tells
    let spec = OperatorConfigSpec {
        config_daemon_node_selector: BTreeMap::from([("a".into(), "1".into())]),
        ..Default::default()
    };
    let narrower = render(&spec, &settings(), &CaBundles::default()).unwrap();
    let narrower = find(&narrower, "DaemonSet", DEVICE_PLUGIN);
    let mut wider_live = narrower.clone();
    wider_live["spec"]["template"]["spec"]["nodeSelector"]["b"] = json!("2");
    assert!(
        contains(&wider_live, narrower),
        "a subset compare alone misses the dropped key"
    );
    wider_live["metadata"]["annotations"][DESIRED_HASH_ANNOTATION] = json!("old");
    assert!(needs_apply(narrower, Some(&wider_live)));
}

#[test]
fn every_embedded_variable_is_known_and_snapshot_of_everything_enabled() {
    let spec = OperatorConfigSpec {
        enable_injector: true,
        enable_operator_webhook: true,
        ..Default::default()
    };
    let plan = render(&spec, &settings(), &cas()).unwrap();
    let all: Vec<&Value> = plan.apply.iter().map(|(_, o)| o).collect();
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("${"), "unsubstituted variable");
    insta::assert_yaml_snapshot!("deploy_plan_all_enabled", all);
}

#[test]
fn cert_manager_mode_names_the_certificate_and_leaves_ca_bundle_and_secrets_alone() {
    let env = BTreeMap::from([
        ("NAMESPACE", "sriov-network-operator"),
        ("ADMISSION_CONTROLLERS_CERTIFICATES_CERT_MANAGER_ENABLED", "True"),
        (
            "ADMISSION_CONTROLLERS_CERTIFICATES_OPERATOR_SECRET_NAME",
            "operator-webhook-cert",
        ),
    ]);
    let s = DeploySettings::from_env(|k| env.get(k).map(|v| v.to_string()));
    assert!(s.cert_manager);
    let spec = OperatorConfigSpec {
        enable_injector: true,
        enable_operator_webhook: true,
        ..Default::default()
    };
    // No CA of the operator's is needed: cert-manager's CA injector fills caBundle.
    let plan = render(&spec, &s, &CaBundles::default()).unwrap();
    let nri = find(
        &plan,
        "MutatingWebhookConfiguration",
        "network-resources-injector-config",
    );
    assert_eq!(
        nri["metadata"]["annotations"][CERT_MANAGER_INJECT_CA_FROM],
        format!("sriov-network-operator/{INJECTOR_SECRET}")
    );
    assert!(nri["webhooks"][0]["clientConfig"].get("caBundle").is_none());
    assert_eq!(
        nri["webhooks"][0]["clientConfig"]["service"]["name"],
        INJECTOR_SERVICE
    );
    for kind in ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"] {
        let hook = find(&plan, kind, "sriov-operator-webhook-config");
        assert_eq!(
            hook["metadata"]["annotations"][CERT_MANAGER_INJECT_CA_FROM],
            "sriov-network-operator/operator-webhook-cert",
            "{kind}"
        );
        assert!(
            hook["webhooks"][0]["clientConfig"].get("caBundle").is_none(),
            "{kind}"
        );
    }
    // The workloads mount the Secret cert-manager writes.
    let webhook = find(&plan, "DaemonSet", OPERATOR_WEBHOOK);
    assert!(
        webhook
            .to_string()
            .contains("\"secretName\":\"operator-webhook-cert\""),
        "{webhook}"
    );
    // Disabling a webhook deletes its objects but never cert-manager's Secret.
    let off = render(&OperatorConfigSpec::default(), &s, &CaBundles::default()).unwrap();
    assert!(
        off.delete
            .iter()
            .any(|(_, k)| k.kind == "MutatingWebhookConfiguration")
    );
    assert!(
        !off.delete.iter().any(|(_, k)| k.kind == "Secret"),
        "{:?}",
        off.delete
    );
    // Without cert-manager the same disable deletes the operator's own Secrets, and an
    // unset or other value is not cert-manager mode.
    let own = render(&OperatorConfigSpec::default(), &settings(), &cas()).unwrap();
    assert_eq!(own.delete.iter().filter(|(_, k)| k.kind == "Secret").count(), 2);
    for value in ["", "false", "yes"] {
        let env = BTreeMap::from([("ADMISSION_CONTROLLERS_CERTIFICATES_CERT_MANAGER_ENABLED", value)]);
        assert!(!DeploySettings::from_env(|k| env.get(k).map(|v| v.to_string())).cert_manager);
    }
}

#[test]
fn settings_come_from_upstreams_environment_variables() {
    let env = BTreeMap::from([
        ("NAMESPACE", "ns"),
        ("RESOURCE_PREFIX", "example.com"),
        ("SRIOV_CNI_IMAGE", "cni"),
        ("SRIOV_INFINIBAND_CNI_IMAGE", "ib"),
        ("SRIOV_DEVICE_PLUGIN_IMAGE", "dp"),
        ("NETWORK_RESOURCES_INJECTOR_IMAGE", "nri"),
        ("SRIOV_NETWORK_CONFIG_DAEMON_IMAGE", "daemon"),
        ("SRIOV_NETWORK_WEBHOOK_IMAGE", "webhook"),
        ("SRIOV_CNI_BIN_PATH", "/opt/cni/bin"),
        ("CLUSTER_TYPE", "kubernetes"),
        ("DEV_MODE", "TRUE"),
        ("USE_EXTERNAL_DRAINER", "true"),
        ("IMAGE_PULL_SECRETS", "a, b,,"),
        (
            "ADMISSION_CONTROLLERS_CERTIFICATES_OPERATOR_SECRET_NAME",
            "operator-webhook-cert",
        ),
    ]);
    let s = DeploySettings::from_env(|k| env.get(k).map(|v| v.to_string()));
    assert_eq!(s.images.webhook, "webhook");
    assert_eq!(s.images.infiniband_cni, "ib");
    assert_eq!(s.image_pull_secrets, ["a", "b"]);
    assert!(s.use_external_drainer);
    assert_eq!(
        s.tls_secret(Component::OperatorWebhook),
        Some(("operator-webhook-cert".to_string(), OPERATOR_WEBHOOK_SERVICE))
    );
    assert_eq!(
        s.tls_secret(Component::Injector),
        Some((INJECTOR_SECRET.to_string(), INJECTOR_SERVICE))
    );
    let spec = OperatorConfigSpec {
        enable_operator_webhook: true,
        ..Default::default()
    };
    let plan = render(&spec, &s, &cas()).unwrap();
    let ds = find(&plan, "DaemonSet", OPERATOR_WEBHOOK);
    assert_eq!(
        ds["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "operator-webhook-cert"
    );
    assert!(
        plan.delete
            .iter()
            .any(|(_, k)| k.kind == "Secret" && k.name == INJECTOR_SECRET)
    );
}
