{{- define "mt.labels" -}}
app.kubernetes.io/name: model-transfer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: bud-serve-cluster
budcluster.io/release: {{ .Release.Name }}
{{- end -}}
{{- define "mt.pvcName" -}}
{{- .Values.pvc.name | default (printf "%s-model" .Release.Name) -}}
{{- end -}}
{{- define "mt.jobName" -}}
{{- .Values.jobName | default (printf "%s-transfer" .Release.Name) -}}
{{- end -}}
{{/* (modelBytes + adapterBytes) x (100 + headroom%) / 100 + floor, rounded up to whole MiB */}}
{{- define "mt.pvcSize" -}}
{{- if .Values.pvc.size -}}
{{- .Values.pvc.size -}}
{{- else -}}
{{- $bytes := add (int64 .Values.modelBytes) (int64 (.Values.adapterBytes | default 0)) -}}
{{- $withHeadroom := div (mul $bytes (add 100 (int64 .Values.pvc.headroomPercent))) 100 -}}
{{- $mib := add (div (add $withHeadroom 1048575) 1048576) (int64 .Values.pvc.headroomMinMiB) -}}
{{- printf "%dMi" $mib -}}
{{- end -}}
{{- end -}}
