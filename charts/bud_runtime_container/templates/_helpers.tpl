{{- define "rt.labels" -}}
app.kubernetes.io/name: bud-runtime
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: bud-serve-cluster
budcluster.io/release: {{ .Release.Name }}
{{- end -}}
{{- define "rt.selector" -}}
app.kubernetes.io/name: bud-runtime
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
