{{/*
The Deployment of one Murmur Python process. Every one of them serves /healthz, /readyz and
/metrics on port 8000, reads the shared environment from the <fullname>-env ConfigMap and
needs a writable /tmp. Arguments (dict):
  root        $
  component   users | users-relay | timeline | timeline-relay | timeline-authors | fanout |
              gateway
  values      the component's values (replicas, resources, probes, scheduling...)
  image       the image values it runs (a relay runs its service's image)
  args        list: the command given to the image's entrypoint (empty: the image's default)
  gunicorn    true for the HTTP services (GUNICORN_WORKERS, GUNICORN_THREADS)
  secretEnv   list of dicts {name, secret, key}: variables read from Secrets
  autoscaled  true when a HorizontalPodAutoscaler owns the replica count
*/}}
{{- define "murmur.pythonDeployment" -}}
{{- $root := .root }}
{{- $v := .values }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "murmur.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  {{- include "murmur.metadata" . | nindent 2 }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "murmur.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # Start the new pod before stopping an old one: capacity never drops in a rollout.
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- include "murmur.labels" . | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- include "murmur.configChecksum" $root | nindent 8 }}
        {{- with include "murmur.scrapeAnnotations" $root | trim }}{{ . | nindent 8 }}{{ end }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "murmur.serviceAccountName" $root }}
      # No Murmur process talks to the API server.
      automountServiceAccountToken: false
      # Service links would add variables such as MURMUR_REDIS_PORT=tcp://... that clash
      # with Murmur's own settings.
      enableServiceLinks: false
      {{- with include "murmur.imagePullSecrets" $root | trim }}{{ . | nindent 6 }}{{ end }}
      {{- include "murmur.podSecurityContext" $root | nindent 6 }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      {{- with include "murmur.scheduling" . | trim }}{{ . | nindent 6 }}{{ end }}
      containers:
        - name: {{ .component }}
          {{- include "murmur.containerImage" (dict "root" $root "image" .image) | nindent 10 }}
          {{- with .args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: 8000
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "murmur.componentName" (dict "root" $root "component" "env") }}
          env:
            # Names the process in logs, traces and metrics.
            - name: MURMUR_PROCESS
              value: {{ .component | quote }}
            {{- if .gunicorn }}
            - name: GUNICORN_WORKERS
              value: {{ $v.gunicorn.workers | quote }}
            - name: GUNICORN_THREADS
              value: {{ $v.gunicorn.threads | quote }}
            {{- end }}
            # Metric files of the process tree (gunicorn workers share them; the image's
            # entrypoint clears stale ones).
            - name: PROMETHEUS_MULTIPROC_DIR
              value: /tmp/metrics
            {{- range .secretEnv }}
            - name: {{ .name }}
              valueFrom:
                secretKeyRef:
                  name: {{ .secret }}
                  key: {{ .key }}
            {{- end }}
            {{- with $root.Values.config.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            {{- include "murmur.probeTiming" $v.startupProbe | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            {{- include "murmur.probeTiming" $v.livenessProbe | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            {{- include "murmur.probeTiming" $v.readinessProbe | nindent 12 }}
          {{- with include "murmur.preStop" (default 0 $v.preStopSleepSeconds) | trim }}{{ . | nindent 10 }}{{ end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          {{- include "murmur.containerSecurityContext" $root | nindent 10 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        {{- include "murmur.tmpVolume" (dict "sizeLimit" "512Mi") | nindent 8 }}
{{- end }}

{{/*
ClusterIP Service of a Murmur HTTP service on port 8000 (dict root, component).
*/}}
{{- define "murmur.pythonService" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "murmur.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  {{- include "murmur.metadata" . | nindent 2 }}
spec:
  type: ClusterIP
  selector:
    {{- include "murmur.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: 8000
      targetPort: http
      protocol: TCP
{{- end }}

{{/*
A setup hook Job (post-install, pre-upgrade): runs one idempotent command in a Murmur
image; the command itself waits for its store (MURMUR_SETUP_TIMEOUT). Arguments (dict):
  root, component (migrate-users | migrate-timeline | topics), image, command (list),
  weight (hook weight), secretEnv (as for murmur.pythonDeployment)
*/}}
{{- define "murmur.setupJob" -}}
{{- $root := .root }}
{{- $jobs := $root.Values.jobs }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "murmur.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "murmur.labels" . | nindent 4 }}
  annotations:
    # After install, when the stores exist; before an upgrade, so new code finds its schema.
    helm.sh/hook: post-install,pre-upgrade
    helm.sh/hook-weight: {{ .weight | quote }}
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    {{- with $root.Values.commonAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  backoffLimit: {{ $jobs.backoffLimit }}
  activeDeadlineSeconds: {{ $jobs.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "murmur.labels" . | nindent 8 }}
    spec:
      restartPolicy: Never
      # A hook runs before the release's own ServiceAccount exists (pre-upgrade after a failed
      # install): the namespace's default account, with no token, serves as well.
      serviceAccountName: default
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with include "murmur.imagePullSecrets" $root | trim }}{{ . | nindent 6 }}{{ end }}
      {{- include "murmur.podSecurityContext" $root | nindent 6 }}
      containers:
        - name: {{ .component }}
          {{- include "murmur.containerImage" (dict "root" $root "image" .image) | nindent 10 }}
          args:
            {{- toYaml .command | nindent 12 }}
          env:
            # The command waits this long for its store (which may still be starting).
            - name: MURMUR_SETUP_TIMEOUT
              value: {{ $jobs.setupTimeoutSeconds | quote }}
            - name: MURMUR_PROCESS
              value: {{ .component | quote }}
            {{- range $name, $value := include "murmur.commonEnv" $root | fromYaml }}
            - name: {{ $name }}
              value: {{ $value | quote }}
            {{- end }}
            {{- range .secretEnv }}
            - name: {{ .name }}
              valueFrom:
                secretKeyRef:
                  name: {{ .secret }}
                  key: {{ .key }}
            {{- end }}
            {{- with $root.Values.config.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          resources:
            {{- toYaml $jobs.resources | nindent 12 }}
          {{- include "murmur.containerSecurityContext" $root | nindent 10 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        {{- include "murmur.tmpVolume" (dict) | nindent 8 }}
{{- end }}
