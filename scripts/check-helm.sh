#!/usr/bin/env bash
# Checks the Helm chart helm/sluice:
#   1. `helm lint --strict` with the default values and with helm/sluice/ci/all-on-values.yaml;
#   2. `helm template` with the default values, with every option on, and with the local
#      executor, for Kubernetes 1.30 and 1.37, each output validated by
#      `kubernetes-validate --strict` against that version's schemas;
#   3. the chart's own rules on the rendered objects (restricted pods, secrets only from
#      Secrets, probes, the api without a token, least RBAC, the ServiceMonitor's token);
#   4. bad values are refused (values.schema.json and the chart's cross-field rules).
# kubernetes-validate has no schema for the Prometheus Operator's ServiceMonitor (a CRD): it
# prints a WARN for a kind it does not know and passes it. Only that one warning, once per
# rendered ServiceMonitor, is accepted here; any other unknown kind or version fails.
# Needs helm, kubernetes-validate and python3 with PyYAML (scripts/test-services.sh installs
# them).
set -euo pipefail
cd "$(dirname "$0")/.."

chart=helm/sluice
all_on=$chart/ci/all-on-values.yaml
kube_versions=(1.30.0 1.37.0)
servicemonitor_warning="Couldn't find schema for kind ServiceMonitor with api version monitoring.coreos.com/v1"

for tool in helm kubernetes-validate python3; do
  command -v "$tool" >/dev/null || {
    echo "check-helm: $tool is missing (bash scripts/test-services.sh installs it)" >&2
    exit 1
  }
done

python3 -c 'import yaml' 2>/dev/null || {
  echo "check-helm: python3 has no PyYAML (it comes with kubernetes-validate)" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== helm chart $chart: $(helm version --short), kubernetes-validate $(kubernetes-validate --version)"

echo "-- helm lint --strict"
helm lint --strict "$chart" >"$work/lint.txt" 2>&1 || { cat "$work/lint.txt"; exit 1; }
echo "   default values: clean"
helm lint --strict "$chart" -f "$all_on" >"$work/lint.txt" 2>&1 || { cat "$work/lint.txt"; exit 1; }
echo "   $all_on: clean"

# Sanity: --strict really rejects an unknown field, so a pass below means something.
cat >"$work/typo.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: typo
spec:
  prots: []
EOF
if kubernetes-validate --strict --quiet -k 1.30.0 "$work/typo.yaml" >/dev/null 2>&1; then
  echo "check-helm: kubernetes-validate --strict accepted an unknown field" >&2
  exit 1
fi

# render NAME KUBE_VERSION HELM_ARGS...: renders into $work/NAME-KUBE_VERSION.yaml and
# validates it.
render() {
  local name=$1 version=$2
  shift 2
  local out="$work/$name-$version.yaml"
  helm template sluice "$chart" --namespace sluice --kube-version "$version" "$@" >"$out"
  local report="$work/$name-$version.validate"
  local rc=0
  kubernetes-validate --strict -k "$version" "$out" >"$report" 2>&1 || rc=$?
  local errors unknown monitors accepted passed
  errors=$(grep -cv -e '^INFO ' -e '^WARN ' "$report" || true)
  unknown=$(grep '^WARN ' "$report" | grep -cvF "$servicemonitor_warning" || true)
  accepted=$(grep '^WARN ' "$report" | grep -cF "$servicemonitor_warning" || true)
  passed=$(grep -c '^INFO .* passed ' "$report" || true)
  monitors=$(grep -c '^kind: ServiceMonitor$' "$out" || true)
  if [ "$rc" != 0 ] || [ "$errors" != 0 ] || [ "$unknown" != 0 ] || [ "$accepted" != "$monitors" ]; then
    grep -v '^INFO ' "$report" >&2 || true
    echo "check-helm: $name values, Kubernetes $version: validation failed" >&2
    exit 1
  fi
  local skipped=""
  [ "$accepted" != 0 ] && skipped=", $accepted ServiceMonitor not schema-checked (CRD; checked by the chart rules below)"
  echo "   $name values, Kubernetes $version: $passed objects valid$skipped"
}

echo "-- helm template | kubernetes-validate --strict"
for version in "${kube_versions[@]}"; do
  render default "$version"
  render all-on "$version" -f "$all_on"
  render local-executor "$version" --set worker.executor=local
done

echo "-- chart rules"
for name in default all-on local-executor; do
  python3 - "$work/$name-${kube_versions[-1]}.yaml" "$name" <<'PY'
import sys
import yaml

path, name = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
problems = []


def check(ok, message):
    if not ok:
        problems.append(message)


def of_kind(kind):
    return [d for d in docs if d["kind"] == kind]


def named(kind, suffix):
    return [d for d in of_kind(kind) if d["metadata"]["name"].endswith(suffix)]


check(not of_kind("Secret"), "the chart must not create Secrets")
check(not any("{{" in yaml.safe_dump(d) for d in docs), "unrendered template text")

SECRET_ENV = ("SLUICE_DATABASE_URL", "SLUICE_SECRET_KEY", "SLUICE_REDIS_URL", "SLUICE_METRICS_TOKEN")
pods = [(d, d["spec"]["template"]["spec"]) for d in of_kind("Deployment") + of_kind("Job")]
check(len(pods) == 3, f"expected api, worker and migrate pods, found {len(pods)}")
metrics_tokens = set()
for owner, pod in pods:
    where = f"{owner['kind']}/{owner['metadata']['name']}"
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot")
    check(psc.get("runAsUser", 0) > 0, f"{where}: runAsUser")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccompProfile")
    check(pod.get("enableServiceLinks") is False, f"{where}: enableServiceLinks must be false")
    check(not pod.get("hostNetwork") and not pod.get("hostPID"), f"{where}: host namespaces")
    for volume in pod.get("volumes", []):
        check("hostPath" not in volume, f"{where}: hostPath volume")
    for c in pod["containers"]:
        csc = c.get("securityContext", {})
        check(csc.get("allowPrivilegeEscalation") is False, f"{where}/{c['name']}: allowPrivilegeEscalation")
        check(csc.get("readOnlyRootFilesystem") is True, f"{where}/{c['name']}: readOnlyRootFilesystem")
        check(csc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}/{c['name']}: drop ALL")
        check(not csc.get("capabilities", {}).get("add"), f"{where}/{c['name']}: added capabilities")
        check(csc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}/{c['name']}: seccompProfile")
        check(c.get("resources", {}).get("requests"), f"{where}/{c['name']}: resource requests")
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        check("/tmp" in mounts, f"{where}/{c['name']}: a writable /tmp")
        env = {e["name"]: e for e in c.get("env", [])}
        for key, e in env.items():
            if key in SECRET_ENV or key.endswith("_CLIENT_SECRET"):
                check("value" not in e and "secretKeyRef" in e.get("valueFrom", {}),
                      f"{where}/{c['name']}: {key} must come from a Secret")
        if "SLUICE_METRICS_TOKEN" in env:
            ref = env["SLUICE_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
            metrics_tokens.add((ref["name"], ref["key"]))
        if owner["kind"] == "Deployment":
            check(c["args"][0] in ("api", "worker"), f"{where}: runs `sluice api` or `sluice worker`")
            check(env.get("SLUICE_BIND", {}).get("value") == "0.0.0.0:8080", f"{where}: SLUICE_BIND")
            check(any(p["containerPort"] == 8080 and p["name"] == "http" for p in c["ports"]), f"{where}: port 8080")
            check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{where}: liveness on /healthz")
            check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{where}: readiness on /readyz")
        if c["args"][0] == "worker":
            check(env.get("SLUICE_WORKSPACE_DIR", {}).get("value") in mounts, f"{where}: a writable workspace dir")

api = named("Deployment", "-api")
worker = named("Deployment", "-worker")
job = of_kind("Job")
check(len(api) == 1 and len(worker) == 1, "one api and one worker Deployment")
check(api and api[0]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False,
      "the api pod mounts no service account token")
for sa in of_kind("ServiceAccount"):
    if sa["metadata"]["name"] == api[0]["spec"]["template"]["spec"]["serviceAccountName"]:
        check(sa.get("automountServiceAccountToken") is False, "the api ServiceAccount mounts no token")
check(len(job) == 1 and job[0]["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
      and job[0]["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"],
      "the migration Job is a pre-install/pre-upgrade hook running `sluice migrate`")

executor = {e["name"]: e.get("value") for e in worker[0]["spec"]["template"]["spec"]["containers"][0]["env"]}["SLUICE_EXECUTOR"]
roles = of_kind("ClusterRole") + of_kind("Role")
bindings = of_kind("ClusterRoleBinding") + of_kind("RoleBinding")
policies = of_kind("ValidatingAdmissionPolicy")
worker_token = worker[0]["spec"]["template"]["spec"]["automountServiceAccountToken"]
if executor == "kubernetes":
    check(worker_token is True, "the Kubernetes executor needs the worker's token")
    granted = {}
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                check("*" not in rule.get(field, []), f"{role['metadata']['name']}: a wildcard in {field}")
            check(not rule.get("nonResourceURLs"), f"{role['metadata']['name']}: nonResourceURLs")
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    granted.setdefault((group, resource), set()).update(rule["verbs"])
    write = {"get", "list", "watch", "create", "patch", "delete"}
    expected = {
        ("", "namespaces"): write,
        ("", "pods"): {"get", "list", "watch", "create", "patch", "delete"},
        ("", "pods/exec"): {"get", "create"},
        ("", "pods/log"): {"get"},
        ("", "events"): {"get", "list", "watch"},
        ("", "resourcequotas"): write,
        ("", "limitranges"): write,
        ("", "serviceaccounts"): write,
        ("networking.k8s.io", "networkpolicies"): write,
        ("apps", "deployments"): {"get", "list", "watch", "create", "patch"},
        ("", "services"): {"get", "list", "watch", "create", "patch"},
        ("discovery.k8s.io", "endpointslices"): {"get", "list", "watch", "create", "patch"},
    }
    check(granted == expected, f"the worker's RBAC differs from the documented rules: {granted}")
    subjects = {(s["kind"], s["name"]) for b in bindings for s in b["subjects"]}
    check(subjects == {("ServiceAccount", worker[0]["spec"]["template"]["spec"]["serviceAccountName"])},
          f"RBAC is bound to the worker's ServiceAccount only: {subjects}")
    check(len(policies) == 1 and "sluice-t-" in yaml.safe_dump(policies[0]),
          "the tenant-namespace admission policy")
    check(len(of_kind("ValidatingAdmissionPolicyBinding")) == len(policies), "the policy's binding")
else:
    check(not roles and not bindings and not policies, "no RBAC without the Kubernetes executor")
    check(worker_token is False, "with the local executor the worker pod holds no token")

services = of_kind("Service")
for monitor in of_kind("ServiceMonitor"):
    check(monitor["apiVersion"] == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [s for s in services if selector.items() <= s["metadata"]["labels"].items()]
    check({s["metadata"]["labels"]["app.kubernetes.io/component"] for s in selected} == {"api", "worker"},
          "the ServiceMonitor selects the api and worker Services")
    check(monitor["spec"]["namespaceSelector"]["matchNames"] == [monitor["metadata"]["namespace"]],
          "the ServiceMonitor looks in its own namespace")
    for endpoint in monitor["spec"]["endpoints"]:
        check(endpoint["path"] == "/metrics", "the ServiceMonitor scrapes /metrics")
        check(all(any(p["name"] == endpoint["port"] for p in s["spec"]["ports"]) for s in selected),
              "the ServiceMonitor's port is named on every selected Service")
        auth = endpoint.get("authorization", {})
        creds = auth.get("credentials", {})
        check(auth.get("type") == "Bearer" and (creds.get("name"), creds.get("key")) in metrics_tokens,
              "the ServiceMonitor sends the pods' SLUICE_METRICS_TOKEN as a Bearer token")
        check(set(endpoint) <= {"port", "path", "scheme", "interval", "scrapeTimeout", "authorization"},
              f"unexpected ServiceMonitor endpoint fields: {sorted(endpoint)}")

if problems:
    for p in problems:
        print(f"check-helm: {name} values: {p}", file=sys.stderr)
    sys.exit(1)
kinds = sorted({d["kind"] for d in docs})
print(f"   {name} values: ok ({len(docs)} objects: {', '.join(kinds)})")
PY
done

echo "-- bad values are refused"
# refuse DESCRIPTION EXPECTED_TEXT HELM_ARGS...
refused=0
refuse() {
  local what=$1 expected=$2
  shift 2
  if helm template sluice "$chart" --namespace sluice "$@" >/dev/null 2>"$work/refused.txt"; then
    echo "check-helm: accepted $what" >&2
    exit 1
  fi
  if ! grep -qF -- "$expected" "$work/refused.txt"; then
    echo "check-helm: refused $what, but without \"$expected\":" >&2
    cat "$work/refused.txt" >&2
    exit 1
  fi
  refused=$((refused + 1))
  echo "   $what"
}
refuse "an unknown key" "replicaCount" --set replicaCount=3
refuse "a secret value inlined (database.url)" "url" --set database.url=postgres://u:p@db/sluice
refuse "a Secret reference without a name" "urlSecret" --set database.urlSecret.name=
refuse "a mistyped replica count" "replicas" --set api.replicas=two
refuse "an unknown executor" "executor" --set worker.executor=docker
refuse "a malformed egress CIDR" "egressCidrs" --set 'tenants.egressCidrs[0]=10.0.0.0'
refuse "an OpenID provider without an issuer" "issuer" \
  --set-json 'auth.oauthProviders=[{"name":"corp","clientId":"c","clientSecret":{"name":"s","key":"k"}}]'
refuse "the Ingress without a metrics token" "metrics.tokenSecret.name" \
  --set ingress.enabled=true --set ingress.host=ci.example.com
refuse "the ServiceMonitor without a metrics token" "metrics.tokenSecret.name" \
  --set metrics.serviceMonitor.enabled=true
refuse "an existing ServiceAccount without a name" "worker.serviceAccount.name" \
  --set worker.serviceAccount.create=false
refuse "a grace period shorter than the shutdown timeout" "terminationGracePeriodSeconds" \
  --set shutdownTimeoutSecs=120

echo "helm chart: all checks passed (lint x2, ${#kube_versions[@]} Kubernetes versions x 3 value sets validated, chart rules x3, $refused bad values refused)"
