{{/*
The pod the StatefulSet (standalone, or cluster mode with ack: local) or
the Deployment (cluster mode with ack: cluster) runs: the app and hookd.
Given the chart's root context.
*/}}
{{- define "hookd.podTemplate" -}}
{{- if and .Values.serviceMonitor.enabled (not .Values.hookd.adminToken.existingSecret) }}
{{- fail "serviceMonitor.enabled needs hookd.adminToken.existingSecret: without a token the admin listener stays on loopback" }}
{{- end }}
{{- $sidecar := dict "values" .Values.hookd "configMap" (printf "%s-config" (include "hookd.fullname" .)) "appVersion" .Chart.AppVersion -}}
metadata:
  labels:
    {{- include "hookd.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  terminationGracePeriodSeconds: {{ include "hookd.terminationGracePeriodSeconds" (dict "values" .Values.hookd "extra" .Values.terminationGracePeriodExtraSeconds) }}
  {{- with .Values.serviceAccountName }}
  serviceAccountName: {{ . }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- if .Values.hookd.nativeSidecar }}
  initContainers:
    {{- include "hookd.sidecar" $sidecar | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .Values.app.name }}
      image: "{{ .Values.app.image.repository }}:{{ .Values.app.image.tag }}"
      imagePullPolicy: {{ .Values.app.image.pullPolicy }}
      env:
        # Where the app posts its events: hookd, in the same pod.
        - name: HOOKD_URL
          value: "http://127.0.0.1:8787"
        {{- with .Values.app.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.app.ports }}
      ports:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.app.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.app.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.app.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- if not .Values.hookd.nativeSidecar }}
    {{- include "hookd.sidecar" $sidecar | nindent 4 }}
    {{- end }}
  volumes:
    {{- include "hookd.volumes" $sidecar | nindent 4 }}
  {{- if include "hookd.ephemeralData" . }}
    # ack: cluster: JetStream holds a copy of what hookd acknowledged, so
    # its data need not outlive the pod.
    - name: hookd-data
      emptyDir: {}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* "true" when hookd's data lives only as long as its pod: cluster mode with ack: cluster. */}}
{{- define "hookd.ephemeralData" -}}
{{- if and (dig "cluster" "natsUrl" "" .Values.hookd) (eq (dig "cluster" "ack" "local" .Values.hookd) "cluster") }}true{{ end }}
{{- end }}
