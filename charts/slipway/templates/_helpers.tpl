{{/* Names and labels shared by every template. */}}
{{- define "slipway.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "slipway.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "slipway.labels" -}}
{{ include "slipway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: slipway
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The one namespace to watch ("" = the whole cluster). The chart grants a namespaced operator a Role
in that namespace, so it must be one existing namespace: a glob such as "team-*" would match
namespaces that do not exist yet, which no Role can be granted in ahead of time.
*/}}
{{- define "slipway.watchNamespace" -}}
{{- $ns := .Values.watchNamespace | default "" -}}
{{- if regexMatch "[*?\\[\\]]" $ns -}}
{{- fail (printf "watchNamespace %q is a glob: the chart grants a namespaced operator a Role in one named namespace and cannot grant one in namespaces that do not exist yet. Set watchNamespace to one namespace, or leave it empty to watch the whole cluster." $ns) -}}
{{- end -}}
{{- if and $ns (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $ns)) -}}
{{- fail (printf "watchNamespace %q is not a namespace name (lowercase letters, digits and '-', at most 63)." $ns) -}}
{{- end -}}
{{- $ns -}}
{{- end -}}
