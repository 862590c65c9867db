{{/*
Names, labels and small shared pieces. Helpers that describe one component take a dict:
  root       the top-level context ($)
  component  the component name, as in resource names and app.kubernetes.io/component
*/}}

{{/* Chart name, or nameOverride. */}}
{{- define "murmur.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: the release name, unless it lacks the chart name. */}}
{{- define "murmur.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of one component's resources: <fullname>-<component>. */}}
{{- define "murmur.componentName" -}}
{{- printf "%s-%s" (include "murmur.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "murmur.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The version label: the image tag in use (it names the build), else appVersion. */}}
{{- define "murmur.version" -}}
{{- default .Chart.AppVersion .Values.image.tag | toString | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select a component's pods; never change them (selectors are immutable). */}}
{{- define "murmur.selectorLabels" -}}
app.kubernetes.io/name: {{ include "murmur.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "murmur.labels" -}}
helm.sh/chart: {{ include "murmur.chart" .root }}
{{ include "murmur.selectorLabels" . }}
app.kubernetes.io/version: {{ include "murmur.version" .root | quote }}
app.kubernetes.io/part-of: murmur
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels and annotations of a resource's metadata (dict root, component). */}}
{{- define "murmur.metadata" -}}
labels:
  {{- include "murmur.labels" . | nindent 2 }}
{{- with .root.Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Labels that select every pod of the release (NetworkPolicies). */}}
{{- define "murmur.releaseSelector" -}}
app.kubernetes.io/name: {{ include "murmur.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Image reference: dict root, image (the component's image values). Registry, tag and pull
policy fall back to the global image.* values; a digest replaces the tag.
*/}}
{{- define "murmur.image" -}}
{{- $global := .root.Values.image }}
{{- $registry := default $global.registry .image.registry }}
{{- $repository := .image.repository }}
{{- if $registry }}
{{- $repository = printf "%s/%s" (trimSuffix "/" $registry) $repository }}
{{- end }}
{{- if .image.digest }}
{{- printf "%s@%s" $repository .image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default (default .root.Chart.AppVersion $global.tag) .image.tag | toString) }}
{{- end }}
{{- end }}

{{- define "murmur.imagePullPolicy" -}}
{{- default .root.Values.image.pullPolicy .image.pullPolicy }}
{{- end }}

{{/* image: and imagePullPolicy: lines of a container (dict root, image). */}}
{{- define "murmur.containerImage" -}}
image: {{ include "murmur.image" . | quote }}
imagePullPolicy: {{ include "murmur.imagePullPolicy" . }}
{{- end }}

{{/* The image values of an image that defaults to another one's when repository is empty. */}}
{{- define "murmur.imageOr" -}}
{{- if .image.repository }}{{ toYaml .image }}{{ else }}{{ toYaml .fallback }}{{ end }}
{{- end }}

{{- define "murmur.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "murmur.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* imagePullSecrets of a pod spec. */}}
{{- define "murmur.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod-level security context (restricted Pod Security Standard). */}}
{{- define "murmur.podSecurityContext" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* Container-level security context. */}}
{{- define "murmur.containerSecurityContext" -}}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end }}

{{/*
Scheduling fields of a pod spec (dict root, component, values): nodeSelector, tolerations,
priority class and affinity; `podAntiAffinity: soft|hard` is a preset that spreads the
component's pods over nodes, used unless `affinity` is set.
*/}}
{{- define "murmur.scheduling" -}}
{{- $v := .values }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $v.affinity }}
affinity:
  {{- toYaml $v.affinity | nindent 2 }}
{{- else if eq (default "" $v.podAntiAffinity) "soft" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "murmur.selectorLabels" . | nindent 14 }}
{{- else if eq (default "" $v.podAntiAffinity) "hard" }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "murmur.selectorLabels" . | nindent 12 }}
{{- end }}
{{- end }}

{{/* Probe timing fields from values (periodSeconds, timeoutSeconds, failureThreshold). */}}
{{- define "murmur.probeTiming" -}}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end }}

{{/* A writable /tmp for a read-only root filesystem. */}}
{{- define "murmur.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ default "256Mi" .sizeLimit }}
{{- end }}

{{/* preStop hook that keeps a pod serving while Services and callers drop it. */}}
{{- define "murmur.preStop" -}}
{{- if gt (int .) 0 }}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ int . }}"]
{{- end }}
{{- end }}

{{/* PodDisruptionBudget (dict root, component, values). */}}
{{- define "murmur.pdb" -}}
{{- if .values.pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "murmur.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  {{- include "murmur.metadata" . | nindent 2 }}
spec:
  {{- if not (kindIs "string" .values.pdb.minAvailable) }}
  minAvailable: {{ .values.pdb.minAvailable }}
  {{- else if .values.pdb.minAvailable }}
  minAvailable: {{ .values.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .values.pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "murmur.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{/*
PersistentVolumeClaim spec of a store (the persistence values). storageClassName: empty
leaves it out (the cluster's default class), "-" writes "" (no dynamic provisioning).
*/}}
{{- define "murmur.pvcSpec" -}}
accessModes:
  {{- toYaml .accessModes | nindent 2 }}
{{- if eq .storageClassName "-" }}
storageClassName: ""
{{- else if .storageClassName }}
storageClassName: {{ .storageClassName | quote }}
{{- end }}
resources:
  requests:
    storage: {{ .size | quote }}
{{- end }}

{{/* Name and key of the Secret holding each generated or supplied secret. */}}
{{- define "murmur.jwtSecretName" -}}
{{- default (include "murmur.componentName" (dict "root" . "component" "jwt")) .Values.secrets.jwt.existingSecret }}
{{- end }}

{{- define "murmur.cursorSecretName" -}}
{{- default (include "murmur.componentName" (dict "root" . "component" "cursor")) .Values.secrets.cursor.existingSecret }}
{{- end }}

{{- define "murmur.postgresSecretName" -}}
{{- default (include "murmur.componentName" (dict "root" . "component" "postgres")) .Values.postgres.auth.existingSecret }}
{{- end }}

{{- define "murmur.postgresSecretKey" -}}
{{- if .Values.postgres.auth.existingSecret }}{{ .Values.postgres.auth.secretKey }}{{ else }}password{{ end }}
{{- end }}

{{- define "murmur.kafkaSecretName" -}}
{{- default (include "murmur.componentName" (dict "root" . "component" "kafka")) .Values.kafka.clusterId.existingSecret }}
{{- end }}

{{- define "murmur.kafkaSecretKey" -}}
{{- if .Values.kafka.clusterId.existingSecret }}{{ .Values.kafka.clusterId.secretKey }}{{ else }}cluster-id{{ end }}
{{- end }}

{{/* Store addresses as the services see them: in the cluster or external. */}}
{{- define "murmur.postgresHost" -}}
{{- if .Values.postgres.enabled }}{{ include "murmur.componentName" (dict "root" . "component" "postgres") }}{{ else }}{{ .Values.postgres.external.host }}{{ end }}
{{- end }}

{{- define "murmur.postgresPort" -}}
{{- if .Values.postgres.enabled }}5432{{ else }}{{ .Values.postgres.external.port }}{{ end }}
{{- end }}

{{- define "murmur.redisHost" -}}
{{- if .Values.redis.enabled }}{{ include "murmur.componentName" (dict "root" . "component" "redis") }}{{ else }}{{ .Values.redis.external.host }}{{ end }}
{{- end }}

{{- define "murmur.redisPort" -}}
{{- if .Values.redis.enabled }}6379{{ else }}{{ .Values.redis.external.port }}{{ end }}
{{- end }}

{{/* Kafka bootstrap: the client Service (any node answers metadata), or the external list. */}}
{{- define "murmur.kafkaBootstrap" -}}
{{- if .Values.kafka.enabled }}{{ include "murmur.componentName" (dict "root" . "component" "kafka") }}:9092{{ else }}{{ .Values.kafka.external.bootstrapServers }}{{ end }}
{{- end }}

{{/* Cassandra contact points: the client Service; the driver discovers the other nodes. */}}
{{- define "murmur.cassandraHosts" -}}
{{- if .Values.cassandra.enabled }}{{ include "murmur.componentName" (dict "root" . "component" "cassandra") }}{{ else }}{{ .Values.cassandra.external.hosts }}{{ end }}
{{- end }}

{{- define "murmur.cassandraPort" -}}
{{- if .Values.cassandra.enabled }}9042{{ else }}{{ .Values.cassandra.external.port }}{{ end }}
{{- end }}

{{/* Fully qualified name of a store's headless Service (peers address each other by it). */}}
{{- define "murmur.headlessFQDN" -}}
{{- printf "%s-headless.%s.svc.%s" (include "murmur.componentName" .) .root.Release.Namespace .root.Values.clusterDomain }}
{{- end }}

{{/*
Environment shared by every Murmur process, as a map of quoted strings: the ConfigMap's
data, and the env of the hook Jobs (which cannot rely on the ConfigMap: before an upgrade
it still holds the previous release's values).
*/}}
{{- define "murmur.commonEnv" -}}
MURMUR_PROFILE: {{ .Values.config.profile | quote }}
MURMUR_PORT: "8000"
MURMUR_BIND_HOST: "0.0.0.0"
MURMUR_HOME: "/tmp/murmur"
PYTHONUNBUFFERED: "1"
MURMUR_PG_HOST: {{ include "murmur.postgresHost" . | quote }}
MURMUR_PG_PORT: {{ include "murmur.postgresPort" . | quote }}
MURMUR_PG_USER: {{ .Values.postgres.auth.username | quote }}
MURMUR_PG_DATABASE: {{ .Values.postgres.auth.database | quote }}
MURMUR_REDIS_HOST: {{ include "murmur.redisHost" . | quote }}
MURMUR_REDIS_PORT: {{ include "murmur.redisPort" . | quote }}
MURMUR_KAFKA_BOOTSTRAP: {{ include "murmur.kafkaBootstrap" . | quote }}
MURMUR_KAFKA_REPLICATION: {{ .Values.kafka.replicationFactor | quote }}
MURMUR_KAFKA_PARTITIONS: {{ .Values.kafka.partitions | quote }}
MURMUR_CASSANDRA_HOSTS: {{ include "murmur.cassandraHosts" . | quote }}
MURMUR_CASSANDRA_PORT: {{ include "murmur.cassandraPort" . | quote }}
MURMUR_CASSANDRA_KEYSPACE: {{ .Values.cassandra.keyspace | quote }}
MURMUR_CASSANDRA_RF: {{ .Values.cassandra.replicationFactor | quote }}
MURMUR_CASSANDRA_CONSISTENCY: {{ .Values.cassandra.consistency | quote }}
MURMUR_USERS_URL: {{ printf "http://%s:8000" (include "murmur.componentName" (dict "root" . "component" "users")) | quote }}
MURMUR_TIMELINE_URL: {{ printf "http://%s:8000" (include "murmur.componentName" (dict "root" . "component" "timeline")) | quote }}
{{- /* Where the gateway's public system status reads the workers' /readyz and /metrics. */}}
{{- range $worker := list "fanout" "users-relay" "timeline-relay" "timeline-authors" }}
{{ printf "MURMUR_%s_URL" ($worker | upper | replace "-" "_") }}: {{ printf "http://%s:8000" (include "murmur.componentName" (dict "root" $ "component" $worker)) | quote }}
{{- end }}
CELEBRITY_THRESHOLD: {{ .Values.config.celebrityThreshold | quote }}
HOME_TIMELINE_CAP: {{ .Values.config.homeTimelineCap | quote }}
{{- if .Values.tracing.enabled }}
OTEL_SDK_DISABLED: "false"
{{- /* The standard names; common.tracing maps them to the packages' entry points. */}}
OTEL_TRACES_EXPORTER: {{ .Values.tracing.exporter | quote }}
OTEL_TRACES_SAMPLER: "parentbased_traceidratio"
OTEL_TRACES_SAMPLER_ARG: {{ .Values.tracing.sampleRatio | toString | quote }}
{{- if and .Values.tracing.endpoint (eq .Values.tracing.exporter "otlp") }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ .Values.tracing.endpoint | quote }}
{{- else if and .Values.tracing.endpoint (eq .Values.tracing.exporter "zipkin") }}
OTEL_EXPORTER_ZIPKIN_ENDPOINT: {{ .Values.tracing.endpoint | quote }}
{{- end }}
{{- else }}
OTEL_SDK_DISABLED: "true"
{{- end }}
{{- end }}

{{/* checksum/config of a pod template: the shared environment. */}}
{{- define "murmur.configChecksum" -}}
checksum/config: {{ include "murmur.commonEnv" . | sha256sum }}
{{- end }}

{{/* Prometheus scrape annotations of a Murmur process's pod. */}}
{{- define "murmur.scrapeAnnotations" -}}
{{- if .Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: "8000"
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/*
The Secrets the secrets hook looks after, as a YAML list of {name, generate, keys}:
`generate` names what to create when the Secret is missing (jwt, key, password,
kafka-cluster-id); empty means the Secret is supplied (existingSecret) and only checked.
*/}}
{{- define "murmur.secretSpecs" -}}
- name: {{ include "murmur.jwtSecretName" . }}
  generate: {{ ternary "" "jwt" (not (empty .Values.secrets.jwt.existingSecret)) | quote }}
  keys: [jwt-private.pem, jwt-jwks.json]
- name: {{ include "murmur.cursorSecretName" . }}
  generate: {{ ternary "" "key" (not (empty .Values.secrets.cursor.existingSecret)) | quote }}
  keys: [cursor-key]
- name: {{ include "murmur.postgresSecretName" . }}
  generate: {{ ternary "" "password" (not (empty .Values.postgres.auth.existingSecret)) | quote }}
  keys: [{{ include "murmur.postgresSecretKey" . | quote }}]
{{- if .Values.kafka.enabled }}
- name: {{ include "murmur.kafkaSecretName" . }}
  generate: {{ ternary "" "kafka-cluster-id" (not (empty .Values.kafka.clusterId.existingSecret)) | quote }}
  keys: [{{ include "murmur.kafkaSecretKey" . | quote }}]
{{- end }}
{{- end }}
