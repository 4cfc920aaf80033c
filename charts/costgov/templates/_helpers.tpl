{{- define "costgov.name" -}}costgov{{- end -}}
{{- define "costgov.fullname" -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}-costgov{{- end -}}
{{- define "costgov.labels" -}}
app.kubernetes.io/name: costgov
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "costgov.selector" -}}
app.kubernetes.io/name: costgov
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
