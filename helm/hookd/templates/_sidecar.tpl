{{/*
hookd as a sidecar, for this chart's pod and for any other chart's.

Another chart adds hookd to its own pod with three includes, each given
  (dict "values" <hookd's values, shaped as .Values.hookd here>
        "configMap" <a ConfigMap holding hookd.yaml>
        "appVersion" <the image tag to default to>)
  - "hookd.sidecar": the container (under initContainers when
    values.nativeSidecar, else under containers);
  - "hookd.volumes": its config (and endpoint secrets) volumes;
  - "hookd.volumeClaimTemplate": its data volume, for a StatefulSet's
    volumeClaimTemplates (one queue per replica); in a Deployment (only
    with cluster.ack: cluster) give it a volume `hookd-data` of your own,
    an emptyDir, as this chart's "hookd.podTemplate" does;
  - "hookd.terminationGracePeriodSeconds": the pod's termination grace
    (given "values" and "extra" seconds).
Values without `cluster` are standalone.
The app posts events to http://127.0.0.1:8787/v1/events.
*/}}

{{- define "hookd.sidecar" -}}
{{- $v := .values -}}
- name: hookd
  image: "{{ $v.image.repository }}:{{ $v.image.tag | default .appVersion }}"
  imagePullPolicy: {{ $v.image.pullPolicy | default "IfNotPresent" }}
  {{- if $v.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  args: [serve]
  env:
    - name: HOOKD_CONFIG
      value: /etc/hookd/config/hookd.yaml
    - name: HOOKD_STORAGE__PATH
      value: /var/lib/hookd
    # Only the pod's own containers post events: they share its network
    # namespace, so loopback is enough and no ingest token is needed (hookd
    # refuses to listen beyond loopback without one).
    - name: HOOKD_INGEST__LISTEN
      value: "127.0.0.1:8787"
    {{- if $v.adminToken.existingSecret }}
    - name: HOOKD_ADMIN__LISTEN
      value: "0.0.0.0:8788"
    - name: HOOKD_ADMIN__TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ $v.adminToken.existingSecret }}
          key: {{ $v.adminToken.key | default "token" }}
    {{- else }}
    - name: HOOKD_ADMIN__LISTEN
      value: "127.0.0.1:8788"
    {{- end }}
    - name: HOOKD_DELIVERY__SHUTDOWN_GRACE
      value: "{{ $v.shutdownGraceSeconds }}s"
    {{- if dig "cluster" "natsUrl" "" $v }}
    - name: HOOKD_CLUSTER__NATS_URL
      value: {{ $v.cluster.natsUrl | quote }}
    - name: HOOKD_CLUSTER__ACK
      value: {{ dig "cluster" "ack" "local" $v | quote }}
    - name: HOOKD_CLUSTER__PARK_GRACE
      value: "{{ dig "cluster" "parkGraceSeconds" 20 $v }}s"
    {{- if dig "cluster" "credentials" "existingSecret" "" $v }}
    - name: HOOKD_CLUSTER__CREDENTIALS_FILE
      value: /etc/hookd/nats/{{ dig "cluster" "credentials" "key" "nats.creds" $v }}
    {{- end }}
    {{- end }}
    {{- with $v.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: hookd-ingest
      containerPort: 8787
    - name: hookd-admin
      containerPort: 8788
  volumeMounts:
    - name: hookd-data
      mountPath: /var/lib/hookd
    - name: hookd-config
      mountPath: /etc/hookd/config
      readOnly: true
    {{- if $v.endpointSecrets.existingSecret }}
    - name: hookd-endpoint-secrets
      mountPath: {{ $v.endpointSecrets.mountPath }}
      readOnly: true
    {{- end }}
    {{- if include "hookd.endpointFiles.enabled" $v }}
    - name: hookd-endpoint-files
      mountPath: {{ $v.endpointFiles.mountPath }}
      readOnly: true
    {{- end }}
    {{- if and (dig "cluster" "natsUrl" "" $v) (dig "cluster" "credentials" "existingSecret" "" $v) }}
    - name: hookd-nats-credentials
      mountPath: /etc/hookd/nats
      readOnly: true
    {{- end }}
  # Opening a large store after a crash replays its log: give it time.
  startupProbe:
    exec:
      command: [/usr/local/bin/hookd, healthcheck]
    periodSeconds: 2
    failureThreshold: 150
  # Ready: the store takes writes and a config is loaded.
  readinessProbe:
    exec:
      command: [/usr/local/bin/hookd, healthcheck]
    periodSeconds: 5
    failureThreshold: 2
  # Alive: the process answers. A full disk makes hookd unready, not dead;
  # a restart would not free the disk.
  livenessProbe:
    exec:
      command: [/usr/local/bin/hookd, healthcheck, --live]
    periodSeconds: 10
    failureThreshold: 3
  lifecycle:
    preStop:
      sleep:
        seconds: {{ $v.preStopSeconds }}
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
{{- end }}

{{- define "hookd.volumes" -}}
- name: hookd-config
  configMap:
    name: {{ .configMap }}
{{- if .values.endpointSecrets.existingSecret }}
- name: hookd-endpoint-secrets
  secret:
    secretName: {{ .values.endpointSecrets.existingSecret }}
{{- end }}
{{- if and (dig "cluster" "natsUrl" "" .values) (dig "cluster" "credentials" "existingSecret" "" .values) }}
- name: hookd-nats-credentials
  secret:
    secretName: {{ .values.cluster.credentials.existingSecret }}
{{- end }}
{{- with .values.endpointFiles }}
{{- if .volume }}
- name: hookd-endpoint-files
  {{- toYaml .volume | nindent 2 }}
{{- else if .configMaps }}
- name: hookd-endpoint-files
  projected:
    sources:
      {{- range .configMaps }}
      - configMap:
          name: {{ . }}
      {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* "true" when endpoint files are mounted (given the hookd values). */}}
{{- define "hookd.endpointFiles.enabled" -}}
{{- if or .endpointFiles.volume .endpointFiles.configMaps }}true{{ end }}
{{- end }}

{{/* hookd's config as YAML, with the include globs of the endpoint files. */}}
{{- define "hookd.config" -}}
{{- $config := deepCopy .config -}}
{{- if include "hookd.endpointFiles.enabled" . }}
{{- $dir := .endpointFiles.mountPath }}
{{- $globs := list (printf "%s/*.toml" $dir) (printf "%s/*.yaml" $dir) (printf "%s/*.yml" $dir) }}
{{- $_ := set $config "include" (concat (default list $config.include) $globs) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{- define "hookd.volumeClaimTemplate" -}}
- metadata:
    name: hookd-data
  spec:
    accessModes:
      {{- toYaml .values.persistence.accessModes | nindent 6 }}
    {{- with .values.persistence.storageClassName }}
    storageClassName: {{ . }}
    {{- end }}
    resources:
      requests:
        storage: {{ .values.persistence.size }}
{{- end }}

{{/* Seconds Kubernetes waits after SIGTERM: the preStop pause, hookd's grace, in cluster mode the park grace, and the extra. */}}
{{- define "hookd.terminationGracePeriodSeconds" -}}
{{- $park := 0 -}}
{{- if dig "cluster" "natsUrl" "" .values }}{{ $park = dig "cluster" "parkGraceSeconds" 20 .values }}{{ end -}}
{{- add .values.preStopSeconds .values.shutdownGraceSeconds $park .extra }}
{{- end }}
