{{/*
Names. Component suffixes (-api, -worker, -worker-metrics, -migrate) must still fit a
63-character DNS label, so the base name keeps at most 48.
*/}}
{{- define "sluice.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 48 | trimSuffix "-" -}}
{{- end -}}

{{- define "sluice.fullname" -}}
{{- $name := include "sluice.name" . -}}
{{- $full := .Values.fullnameOverride -}}
{{- if not $full -}}
{{- $full = ternary .Release.Name (printf "%s-%s" .Release.Name $name) (contains $name .Release.Name) -}}
{{- end -}}
{{- $full | trunc 48 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of one component's objects: (list $ "api"). */}}
{{- define "sluice.componentName" -}}
{{- printf "%s-%s" (include "sluice.fullname" (index . 0)) (index . 1) -}}
{{- end -}}

{{/*
Cluster-scoped objects (ClusterRoles, bindings, the admission policy) are shared by every
namespace, so their names carry the release namespace too.
*/}}
{{- define "sluice.clusterName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s-%s" $root.Release.Namespace (include "sluice.fullname" $root) (index . 1) | trunc 253 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of tenant namespaces, as the worker names them (`sluice-t-<org>`). */}}
{{- define "sluice.tenantNamespacePrefix" -}}sluice-t-{{- end -}}

{{/* Labels on every object. */}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end -}}

{{/* Labels that select every pod of this release. */}}
{{- define "sluice.releaseSelector" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels that select one component's pods: (list $ "api"). */}}
{{- define "sluice.selectorLabels" -}}
{{ include "sluice.releaseSelector" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Every label of one component's objects: (list $ "api"). */}}
{{- define "sluice.componentLabels" -}}
{{ include "sluice.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "sluice.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository ($image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Service account names: (list $ "api") or (list $ "worker"). */}}
{{- define "sluice.serviceAccountName" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $sa := (index $root.Values $component).serviceAccount -}}
{{- $sa.name | default (include "sluice.componentName" .) -}}
{{- end -}}

{{/* Whether the worker talks to the Kubernetes API (and so gets RBAC and a token). */}}
{{- define "sluice.workerUsesKubernetes" -}}
{{- if eq .Values.worker.executor "kubernetes" -}}true{{- end -}}
{{- end -}}

{{/* SLUICE_PUBLIC_URL: the value, else the Ingress host, else the in-cluster Service. */}}
{{- define "sluice.publicUrl" -}}
{{- if .Values.publicUrl -}}
{{- .Values.publicUrl | trimSuffix "/" -}}
{{- else if .Values.ingress.enabled -}}
{{- printf "%s://%s" (ternary "https" "http" (ne .Values.ingress.tlsSecretName "")) .Values.ingress.host -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%v" (include "sluice.componentName" (list . "api")) .Release.Namespace .Values.service.port -}}
{{- end -}}
{{- end -}}

{{/* An environment variable from a Secret: (list "SLUICE_X" .Values.some.secretRef). */}}
{{- define "sluice.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ (index . 1).name }}
      key: {{ (index . 1).key }}
{{- end -}}

{{/* Environment of every Sluice process: logging, the database, a writable HOME. */}}
{{- define "sluice.baseEnv" -}}
- name: HOME
  value: /tmp
- name: SLUICE_DATA_DIR
  value: /var/lib/sluice
- name: SLUICE_LOG
  value: {{ .Values.logging.filter | quote }}
- name: SLUICE_LOG_FORMAT
  value: {{ .Values.logging.format | quote }}
{{ include "sluice.secretEnv" (list "SLUICE_DATABASE_URL" .Values.database.urlSecret) }}
- name: SLUICE_DB_MAX_CONNECTIONS
  value: {{ .Values.database.maxConnections | quote }}
{{- end -}}

{{/* Environment shared by the api and worker roles. */}}
{{- define "sluice.serverEnv" -}}
{{ include "sluice.baseEnv" . }}
- name: SLUICE_BIND
  value: "0.0.0.0:8080"
- name: SLUICE_PUBLIC_URL
  value: {{ include "sluice.publicUrl" . | quote }}
- name: SLUICE_SHUTDOWN_TIMEOUT_SECS
  value: {{ .Values.shutdownTimeoutSecs | quote }}
{{ include "sluice.secretEnv" (list "SLUICE_SECRET_KEY" .Values.secretKey.secret) }}
{{- if .Values.redis.urlSecret.name }}
{{ include "sluice.secretEnv" (list "SLUICE_REDIS_URL" .Values.redis.urlSecret) }}
{{- end }}
{{- if .Values.metrics.tokenSecret.name }}
{{ include "sluice.secretEnv" (list "SLUICE_METRICS_TOKEN" .Values.metrics.tokenSecret) }}
{{- end }}
- name: SLUICE_OBJECT_STORE_URL
  value: {{ .Values.objectStore.url | default "file:///var/lib/sluice/objects" | quote }}
{{- end -}}

{{/* envFrom of the api and worker: the object store's credentials. */}}
{{- define "sluice.serverEnvFrom" -}}
{{- if .Values.objectStore.credentialsSecret }}
envFrom:
  - secretRef:
      name: {{ .Values.objectStore.credentialsSecret }}
{{- end }}
{{- end -}}

{{/* The object store's volume and its mount, when it is the shared claim. */}}
{{- define "sluice.objectsClaimName" -}}
{{- .Values.objectStore.volume.existingClaim | default (include "sluice.componentName" (list . "objects")) -}}
{{- end -}}

{{- define "sluice.objectsVolume" -}}
{{- if not .Values.objectStore.url }}
- name: objects
  persistentVolumeClaim:
    claimName: {{ include "sluice.objectsClaimName" . }}
{{- end }}
{{- end -}}

{{- define "sluice.objectsMount" -}}
{{- if not .Values.objectStore.url }}
- name: objects
  mountPath: /var/lib/sluice/objects
{{- end }}
{{- end -}}

{{/* Pod Security Standard `restricted`, pod level. */}}
{{- define "sluice.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod Security Standard `restricted`, container level, with a read-only root. */}}
{{- define "sluice.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Probes of the api and worker: both serve /healthz and /readyz on port 8080. */}}
{{- define "sluice.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 5
  failureThreshold: 60
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{/* Scheduling and extra pod settings of a component: (list $ "api"). */}}
{{- define "sluice.podPlacement" -}}
{{- $values := index (index . 0).Values (index . 1) -}}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "sluice.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
Rules values.schema.json cannot express (they span several keys). Rendering fails with the
message, so `helm lint`, `helm template` and `helm install` all stop on them.
*/}}
{{- define "sluice.validate" -}}
{{- $v := .Values -}}
{{- if and $v.ingress.enabled (not $v.metrics.tokenSecret.name) -}}
{{- fail "metrics.tokenSecret.name: the Ingress makes /metrics public, and its labels name every organisation; set a metrics token Secret" -}}
{{- end -}}
{{- if and $v.metrics.serviceMonitor.enabled (not $v.metrics.tokenSecret.name) -}}
{{- fail "metrics.tokenSecret.name: the ServiceMonitor scrapes with the metrics token; set its Secret" -}}
{{- end -}}
{{- if and $v.ingress.enabled (not $v.ingress.host) -}}
{{- fail "ingress.host: the Ingress needs a host" -}}
{{- end -}}
{{- range $component := list "api" "worker" -}}
{{- $sa := (index $v $component).serviceAccount -}}
{{- if and (not $sa.create) (not $sa.name) -}}
{{- fail (printf "%s.serviceAccount.name: name the existing ServiceAccount to use when create is false (not the namespace's default one)" $component) -}}
{{- end -}}
{{- if le (int (index $v $component).terminationGracePeriodSeconds) (int $v.shutdownTimeoutSecs) -}}
{{- fail (printf "%s.terminationGracePeriodSeconds must exceed shutdownTimeoutSecs (%v), or Kubernetes kills the pod before Sluice has stopped" $component $v.shutdownTimeoutSecs) -}}
{{- end -}}
{{- end -}}
{{- if and $v.api.autoscaling.enabled (gt (int $v.api.autoscaling.minReplicas) (int $v.api.autoscaling.maxReplicas)) -}}
{{- fail "api.autoscaling.minReplicas must not exceed maxReplicas" -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $v.auth.oauthProviders -}}
{{- $env := .name | upper | replace "-" "_" -}}
{{- if hasKey $seen $env -}}
{{- fail (printf "auth.oauthProviders: the name %q appears twice" .name) -}}
{{- end -}}
{{- $_ := set $seen $env true -}}
{{- end -}}
{{- end -}}

{{/* worker.kubernetes.podTemplates as SLUICE_KUBE_POD_TEMPLATES: `label=image`, comma-separated. */}}
{{- define "sluice.podTemplates" -}}
{{- $pairs := list -}}
{{- range $label, $image := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $label $image) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
