{{- define "nic.labels" -}}
app.kubernetes.io/name: node-info-collector
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: bud-serve-cluster
budcluster.io/release: {{ .Release.Name }}
{{- end -}}

{{/* One DaemonSet; called with (dict "root" $ "variant" "nvidia" "cfg" .Values.nvidia) */}}
{{- define "nic.daemonset" -}}
{{- $root := .root -}}
{{- $v := .root.Values -}}
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ $root.Release.Name }}-{{ .variant }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "nic.labels" $root | nindent 4 }}
    budcluster.io/variant: {{ .variant }}
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: node-info-collector
      app.kubernetes.io/instance: {{ $root.Release.Name }}
      budcluster.io/variant: {{ .variant }}
  template:
    metadata:
      labels:
        {{- include "nic.labels" $root | nindent 8 }}
        budcluster.io/variant: {{ .variant }}
      annotations:
        budcluster.io/script-sha: {{ $root.Files.Get "files/write_node_info.py" | sha256sum | trunc 16 }}
    spec:
      serviceAccountName: {{ $root.Release.Name }}
      {{- with .cfg.runtimeClassName }}
      runtimeClassName: {{ . | quote }}
      {{- end }}
      {{- with .cfg.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      affinity:
      {{- if .cfg.affinity }}
        {{- toYaml .cfg.affinity | nindent 8 }}
      {{- else }}
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                {{- if eq .variant "nvidia" }}
                  - {key: {{ $v.nvidia.nodeLabel | quote }}, operator: In, values: ["true"]}
                {{- else if eq .variant "gaudi" }}
                  - {key: {{ $v.gaudi.nodeLabel | quote }}, operator: In, values: ["true"]}
                  - {key: {{ $v.nvidia.nodeLabel | quote }}, operator: NotIn, values: ["true"]}
                {{- else }}
                  - {key: {{ $v.nvidia.nodeLabel | quote }}, operator: NotIn, values: ["true"]}
                  - {key: {{ $v.gaudi.nodeLabel | quote }}, operator: NotIn, values: ["true"]}
                {{- end }}
      {{- end }}
      {{- $tolerations := $v.tolerations }}
      {{- if hasKey .cfg "tolerations" }}
      {{- $tolerations = .cfg.tolerations }}
      {{- end }}
      {{- with $tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: collector
          image: {{ $v.image | quote }}
          imagePullPolicy: {{ $v.imagePullPolicy | quote }}
          command: ["python", "/scripts/write_node_info.py"]
          env:
            - name: NODE_NAME
              valueFrom:
                fieldRef:
                  fieldPath: spec.nodeName
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: REFRESH_SECONDS
              value: {{ $v.refreshSeconds | quote }}
            - name: COLLECT_TIMEOUT_SECONDS
              value: {{ $v.collectTimeoutSeconds | quote }}
            - name: RELEASE_NAME
              value: {{ $root.Release.Name | quote }}
            {{- if eq .variant "nvidia" }}
            - name: NVIDIA_VISIBLE_DEVICES
              value: all
            - name: NVIDIA_DRIVER_CAPABILITIES
              value: utility
            {{- else if eq .variant "gaudi" }}
            - name: HABANA_VISIBLE_DEVICES
              value: all
            {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: scripts
              mountPath: /scripts
              readOnly: true
      volumes:
        - name: scripts
          configMap:
            name: {{ $root.Release.Name }}-script
{{- end -}}
