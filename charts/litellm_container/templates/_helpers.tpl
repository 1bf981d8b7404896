{{- define "ll.labels" -}}
app.kubernetes.io/name: litellm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: bud-serve-cluster
budcluster.io/release: {{ .Release.Name }}
{{- end -}}
{{- define "ll.selector" -}}
app.kubernetes.io/name: litellm
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "ll.config" -}}
model_list:
{{- range .Values.endpoints }}
  - model_name: {{ .modelName | quote }}
    litellm_params:
      model: {{ printf "openai/%s" .model | quote }}
      api_base: {{ .apiBase | quote }}
      api_key: "none"
{{- end }}
router_settings:
  {{- toYaml .Values.routerSettings | nindent 2 }}
general_settings:
  {{- if .Values.masterKeySecret.name }}
  master_key: os.environ/LITELLM_MASTER_KEY
  {{- end }}
  disable_spend_logs: true
{{- end -}}
