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

{{/*
Labels on every object: Helm's bookkeeping (unless helmLabels=false, as manifests/ is
rendered) and the selector labels. Takes a dict: "root" (the chart's context) and
"component" (agent, controller or recorder; empty for what belongs to no one component).
*/}}
{{- define "seccompd.labels" -}}
{{- if .root.Values.helmLabels -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ end -}}
{{ include "seccompd.selectorLabels" . }}
{{- end -}}

{{/*
What a workload selects its pods by (immutable once installed); the same dict as
seccompd.labels.
*/}}
{{- define "seccompd.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* The image of every container, and its pull policy. */}}
{{- define "seccompd.image" -}}
image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
{{- if eq .Values.image.pullPolicy "Never" }}
# Built and imported locally (see the README); never pulled.
{{- end }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- end -}}
