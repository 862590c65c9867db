{{/*
Pieces of the NetworkPolicies (networkpolicies.yaml).
*/}}

{{/* A `from`/`to` peer: the pods of one component of this release (dict root, component). */}}
{{- define "murmur.np.peer" -}}
- podSelector:
    matchLabels:
      {{- include "murmur.selectorLabels" . | nindent 6 }}
{{- end }}

{{/* The ports a store listens on for its clients, in the cluster or outside it. */}}
{{- define "murmur.np.storePorts" -}}
{{- $v := index .root.Values .store }}
{{- $ports := list }}
{{- if $v.enabled }}
{{- $ports = list (get (dict "postgres" 5432 "redis" 6379 "kafka" 9092 "cassandra" 9042) .store) }}
{{- else if eq .store "kafka" }}
{{- range regexFindAll ":[0-9]+" $v.external.bootstrapServers -1 }}
{{- $ports = append $ports (trimPrefix ":" . | int) }}
{{- end }}
{{- else }}
{{- $ports = list $v.external.port }}
{{- end }}
{{- range uniq $ports }}
- port: {{ . }}
  protocol: TCP
{{- end }}
{{- end }}

{{/*
Egress rule towards one store (dict root, store): its pods when it runs in the cluster,
else the external-store address ranges on its ports.
*/}}
{{- define "murmur.np.storeEgress" -}}
{{- $v := index .root.Values .store }}
- to:
    {{- if $v.enabled }}
    {{- include "murmur.np.peer" (dict "root" .root "component" .store) | trim | nindent 4 }}
    {{- else }}
    {{- range .root.Values.networkPolicy.externalStores.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- end }}
  ports:
    {{- include "murmur.np.storePorts" . | trim | nindent 4 }}
{{- end }}

{{/* Egress rule towards a Murmur HTTP service on port 8000 (dict root, component). */}}
{{- define "murmur.np.httpEgress" -}}
- to:
    {{- include "murmur.np.peer" . | trim | nindent 4 }}
  ports:
    - port: 8000
      protocol: TCP
{{- end }}

{{/* Ingress rule on port 8000 from the given components (dict root, from: list). */}}
{{- define "murmur.np.httpIngress" -}}
{{- $root := .root }}
- from:
    {{- range .from }}
    {{- include "murmur.np.peer" (dict "root" $root "component" .) | trim | nindent 4 }}
    {{- end }}
  ports:
    - port: 8000
      protocol: TCP
{{- end }}

{{/* Head of one component's NetworkPolicy (dict root, component, types: list). */}}
{{- define "murmur.np.head" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "murmur.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  {{- include "murmur.metadata" . | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "murmur.selectorLabels" . | nindent 6 }}
  policyTypes:
    {{- toYaml .types | nindent 4 }}
{{- end }}
