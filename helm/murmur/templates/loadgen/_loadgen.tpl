{{/*
The optional Locust load generator (values `loadgen`): one master (web UI, runs the shape,
judges the SLOs) and `loadgen.workers.replicas` workers running the same locustfile as
`make load` (loadtests/locustfile.py, in the murmur-loadgen image) against the edge Service.
*/}}

{{/* The ConfigMap holding manifest.json (and slo.toml): the chart's or an existing one. */}}
{{- define "murmur.loadgen.configMapName" -}}
{{- default (include "murmur.componentName" (dict "root" . "component" "loadgen")) .Values.loadgen.existingConfigMap }}
{{- end }}

{{/* The edge Service's URL, inside the cluster. */}}
{{- define "murmur.loadgen.target" -}}
{{- printf "http://%s:%v" (include "murmur.componentName" (dict "root" . "component" "edge")) .Values.edge.service.port }}
{{- end }}

{{/* Environment of the master and the workers: the locustfile's MURMUR_LOAD_* settings. */}}
{{- define "murmur.loadgen.env" -}}
{{- $v := .Values.loadgen }}
- name: MURMUR_LOAD_MANIFEST
  value: /etc/murmur-load/manifest.json
{{- if $v.slo }}
- name: MURMUR_LOAD_SLO
  value: /etc/murmur-load/slo.toml
{{- end }}
- name: MURMUR_LOAD_SHAPE
  value: {{ $v.shape | quote }}
- name: MURMUR_LOAD_USERS
  value: {{ $v.users | quote }}
- name: MURMUR_LOAD_SPAWN_RATE
  value: {{ $v.spawnRate | quote }}
- name: MURMUR_LOAD_DURATION
  value: {{ $v.duration | quote }}
- name: MURMUR_LOAD_STEP_USERS
  value: {{ $v.stepUsers | quote }}
- name: MURMUR_LOAD_STEP_TIME
  value: {{ $v.stepTime | quote }}
- name: MURMUR_LOAD_THINK
  value: {{ $v.think | quote }}
- name: MURMUR_LOAD_SIGNIN_RATE
  value: {{ $v.signinRate | quote }}
# No report folder in a pod: the SLO table goes to the master's log when a run stops.
- name: MURMUR_LOAD_REPORT_ON_STOP
  value: "1"
{{- end }}

{{/* Pod spec fields shared by the master and the workers (dict root, component). */}}
{{- define "murmur.loadgen.podCommon" -}}
serviceAccountName: {{ include "murmur.serviceAccountName" .root }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with include "murmur.imagePullSecrets" .root | trim }}
{{ . }}
{{- end }}
{{ include "murmur.podSecurityContext" .root }}
terminationGracePeriodSeconds: 30
volumes:
  {{- include "murmur.tmpVolume" (dict "sizeLimit" "256Mi") | nindent 2 }}
  - name: load
    configMap:
      name: {{ include "murmur.loadgen.configMapName" .root }}
{{- end }}
