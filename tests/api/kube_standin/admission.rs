//! Pod Security admission as the API server enforces it per namespace: a namespace labelled
//! `pod-security.kubernetes.io/enforce: restricted` (or `baseline`) refuses a new pod that
//! breaks the level, with the API server's message naming every failed check, so a build pod
//! that would be refused on a cluster is refused here too.

use serde_json::Value;

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
const ENFORCE_VERSION: &str = "pod-security.kubernetes.io/enforce-version";

/// The volume types `restricted` allows.
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Admits the pod `name` into `namespace`, or says why not (the Status message).
pub fn check(namespace: &Value, name: &str, pod: &Value) -> Result<(), String> {
    let labels = &namespace["metadata"]["labels"];
    let level = labels[ENFORCE].as_str().unwrap_or("privileged");
    let restricted = match level {
        "restricted" => true,
        "baseline" => false,
        _ => return Ok(()),
    };
    let version = labels[ENFORCE_VERSION].as_str().unwrap_or("latest");
    let failed = violations(restricted, &pod["spec"]);
    if failed.is_empty() {
        return Ok(());
    }
    Err(format!(
        "pods \"{name}\" is forbidden: violates PodSecurity \"{level}:{version}\": {}",
        failed.join(", ")
    ))
}

/// `container "a"` or `containers "a", "b"`.
fn these(what: &str, names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let plural = if names.len() == 1 { "" } else { "s" };
    format!("{what}{plural} {}", quoted.join(", "))
}

/// The checks `spec` fails, baseline's first, then restricted's when `restricted`.
fn violations(restricted: bool, spec: &Value) -> Vec<String> {
    let containers: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|key| spec[key].as_array().into_iter().flatten())
        .collect();
    let named = |failing: &dyn Fn(&Value) -> bool| -> Vec<String> {
        containers
            .iter()
            .filter(|c| failing(&c["securityContext"]))
            .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let volumes: Vec<&Value> = spec["volumes"].as_array().into_iter().flatten().collect();
    let pod = &spec["securityContext"];
    let mut failed = Vec::new();

    let host: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|key| spec[**key] == true)
        .map(|key| format!("{key}=true"))
        .collect();
    if !host.is_empty() {
        failed.push(format!("host namespaces ({})", host.join(", ")));
    }
    let privileged = named(&|sc| sc["privileged"] == true);
    if !privileged.is_empty() {
        failed.push(format!(
            "privileged ({} must not set securityContext.privileged=true)",
            these("container", &privileged)
        ));
    }
    let host_paths: Vec<String> = volumes
        .iter()
        .filter(|v| !v["hostPath"].is_null())
        .map(|v| v["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    if !host_paths.is_empty() {
        failed.push(format!(
            "hostPath volumes ({})",
            these("volume", &host_paths)
        ));
    }
    if !restricted {
        return failed;
    }

    let escalating = named(&|sc| sc["allowPrivilegeEscalation"] != false);
    if !escalating.is_empty() {
        failed.push(format!(
            "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
            these("container", &escalating)
        ));
    }
    let drops_all = |sc: &Value| {
        sc["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|c| c == "ALL"))
    };
    let adds_any = |sc: &Value| {
        sc["capabilities"]["add"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c != "NET_BIND_SERVICE"))
    };
    let undropped = named(&|sc| !drops_all(sc));
    let adding = named(&adds_any);
    if !undropped.is_empty() || !adding.is_empty() {
        let mut why = Vec::new();
        if !undropped.is_empty() {
            why.push(format!(
                "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                these("container", &undropped)
            ));
        }
        if !adding.is_empty() {
            why.push(format!(
                "{} must not add capabilities other than \"NET_BIND_SERVICE\"",
                these("container", &adding)
            ));
        }
        failed.push(format!("unrestricted capabilities ({})", why.join("; ")));
    }
    let restricted_types: Vec<String> = volumes
        .iter()
        .filter_map(|v| {
            let kind = v
                .as_object()?
                .keys()
                .find(|k| *k != "name" && !RESTRICTED_VOLUMES.contains(&k.as_str()))?;
            Some(format!(
                "volume \"{}\" uses restricted volume type \"{kind}\"",
                v["name"].as_str().unwrap_or_default()
            ))
        })
        .collect();
    if !restricted_types.is_empty() {
        failed.push(format!(
            "restricted volume types ({})",
            restricted_types.join(", ")
        ));
    }
    let pod_non_root = pod["runAsNonRoot"] == true;
    let root_allowed = named(&|sc| match sc["runAsNonRoot"].as_bool() {
        Some(non_root) => !non_root,
        None => !pod_non_root,
    });
    if !root_allowed.is_empty() {
        failed.push(format!(
            "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
            these("container", &root_allowed)
        ));
    }
    let as_root = named(&|sc| sc["runAsUser"] == 0);
    if pod["runAsUser"] == 0 || !as_root.is_empty() {
        let who = if as_root.is_empty() {
            "pod".to_owned()
        } else {
            these("container", &as_root)
        };
        failed.push(format!("runAsUser=0 ({who} must not set runAsUser=0)"));
    }
    let confined = |profile: &Value| {
        matches!(
            profile["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        )
    };
    let pod_confined = confined(&pod["seccompProfile"]);
    let unconfined = named(&|sc| {
        if sc["seccompProfile"].is_null() {
            !pod_confined
        } else {
            !confined(&sc["seccompProfile"])
        }
    });
    if !unconfined.is_empty() {
        failed.push(format!(
            "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
            these("container", &unconfined)
        ));
    }
    failed
}
