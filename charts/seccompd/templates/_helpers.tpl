{{/*
Prefix of every object's name: the release name, or <release>-seccompd when the release name
does not say seccompd. Release "seccompd" gives the names manifests/ uses (seccompd-agent, ...).
*/}}
{{- define "seccompd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "seccompd.namespace" -}}
{{- .Values.namespace.name | default .Release.Namespace -}}
{{- end -}}

{{/* Labels on every object: Helm's bookkeeping; tests/helm_chart.rs ignores them. */}}
{{- define "seccompd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* What the agent's DaemonSet selects its pods by (immutable once installed). */}}
{{- define "seccompd.agentSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{/* What the controller's Deployment selects its pods by (immutable once installed). */}}
{{- define "seccompd.controllerSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{/* What the recorder's DaemonSet selects its pods by (immutable once installed). */}}
{{- define "seccompd.recorderSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/component: recorder
{{- end -}}
