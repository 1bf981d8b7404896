{{- define "rt.labels" -}}
app.kubernetes.io/name: bud-runtime
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/managed-by: bud-serve-cluster
budcluster.io/release: {{ .Release.Name | quote }}
{{- end -}}
{{- define "rt.selector" -}}
app.kubernetes.io/name: bud-runtime
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}
{{- define "rt.scalingBehavior" -}}
behavior:
  scaleUp:
    stabilizationWindowSeconds: {{ int .scaleUpStabilizationSeconds }}
  scaleDown:
    stabilizationWindowSeconds: {{ int .scaleDownStabilizationSeconds }}
{{- end -}}
