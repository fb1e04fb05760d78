{{/*
The pod every role runs: the image's `threds` with the role's subcommand, its settings as
THREDS_* variables and mounted files, probes on the process's own endpoints, and the hardened
security context. Called with dict "root" . "role" ROLE "spec" ROLE-VALUES, where ROLE is
engine, session or persistence (the subcommand of the same name).
*/}}

{{/* Where things are mounted in the container (the image test checks them against the Dockerfile). */}}
{{- define "threds.paths.binary" -}}/usr/local/bin/threds{{- end }}
{{- define "threds.paths.config" -}}/etc/threds/config{{- end }}
{{- define "threds.paths.patterns" -}}/etc/threds/patterns{{- end }}
{{- define "threds.paths.sessions" -}}/etc/threds/sessions{{- end }}
{{- define "threds.paths.resolver" -}}/etc/threds/resolver{{- end }}
{{- define "threds.paths.kafkaCa" -}}/etc/threds/kafka-ca{{- end }}

{{/* Partitions, brokers and Kafka credentials: dict "root" . "secretName" NAME-OF-THE-CHART-MADE-SECRET. */}}
{{- define "threds.env.kafka" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
- name: THREDS_ENGINE_PARTITIONS
  value: {{ $v.topics.partitions | int | toString | quote }}
- name: THREDS_BUS_KAFKA_BROKERS
  value: {{ $v.kafka.brokers | quote }}
{{- if $v.kafka.sasl.enabled }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ default $.secretName $v.kafka.sasl.existingSecret }}
      key: {{ ternary $v.kafka.sasl.existingSecretUsernameKey "kafka-sasl-username" (ne $v.kafka.sasl.existingSecret "") }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ default $.secretName $v.kafka.sasl.existingSecret }}
      key: {{ ternary $v.kafka.sasl.existingSecretPasswordKey "kafka-sasl-password" (ne $v.kafka.sasl.existingSecret "") }}
- name: THREDS_BUS_KAFKA_PROPERTIES
  value: "sasl.username=$(KAFKA_SASL_USERNAME),sasl.password=$(KAFKA_SASL_PASSWORD)"
{{- end }}
{{- end }}

{{/* The environment of every role (dict "root" . "role" ROLE). */}}
{{- define "threds.env" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
- name: THREDS_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: THREDS_SERVER_LISTEN
  value: {{ printf "0.0.0.0:%d" (int $v.port) | quote }}
- name: THREDS_MODEL_PATTERNS
  value: {{ include "threds.paths.patterns" . | quote }}
- name: THREDS_MODEL_SESSIONS
  value: {{ printf "%s/sessions_model.json" (include "threds.paths.sessions" .) | quote }}
- name: THREDS_MODEL_RESOLVER
  value: {{ printf "%s/resolver_config.json" (include "threds.paths.resolver" .) | quote }}
{{ include "threds.env.kafka" (dict "root" $root "secretName" (include "threds.secretName" $root)) | trim }}
{{- if include "threds.redisAuth" $root }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ default (include "threds.secretName" $root) $v.redis.existingSecret }}
      key: {{ ternary $v.redis.existingSecretPasswordKey "redis-password" (ne $v.redis.existingSecret "") }}
{{- end }}
{{- if include "threds.redisUrlsInSecret" $root }}
- name: THREDS_STORE_REDIS_URLS
  valueFrom:
    secretKeyRef:
      name: {{ include "threds.secretName" $root }}
      key: redis-urls
{{- else }}
- name: THREDS_STORE_REDIS_URLS
  value: {{ include "threds.redisUrls" $root | quote }}
{{- end }}
{{- if include "threds.mongodbUriInSecret" $root }}
- name: THREDS_DOCUMENTS_MONGODB_URI
  valueFrom:
    secretKeyRef:
      name: {{ include "threds.secretName" $root }}
      key: mongodb-uri
{{- else if $v.mongodb.existingSecret }}
- name: THREDS_DOCUMENTS_MONGODB_URI
  valueFrom:
    secretKeyRef:
      name: {{ $v.mongodb.existingSecret }}
      key: {{ $v.mongodb.existingSecretUriKey }}
{{- else }}
- name: THREDS_DOCUMENTS_MONGODB_URI
  value: {{ $v.mongodb.uri | quote }}
{{- end }}
- name: THREDS_DOCUMENTS_MONGODB_DATABASE
  value: {{ $v.mongodb.database | quote }}
- name: THREDS_AUTH_JWT_SECRET
  valueFrom:
    secretKeyRef:
      {{- include "threds.jwtSecretRef" $root | trim | nindent 6 }}
- name: THREDS_LOG
  value: {{ $v.logging.level | quote }}
- name: THREDS_TELEMETRY_LOG_FORMAT
  value: {{ $v.logging.format | quote }}
{{- with $v.telemetry.otlp }}
{{- if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .protocol | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "%s-%s" .serviceNamePrefix $.role | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .samplerArg | toString | quote }}
{{- $attributes := list "k8s.pod.name=$(THREDS_NODE_NAME)" "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.node.name=$(NODE_NAME)" (printf "service.instance.id=$(THREDS_NODE_NAME)") (printf "service.version=%s" $root.Chart.AppVersion) }}
{{- range $key := keys .resourceAttributes | sortAlpha }}
{{- $attributes = append $attributes (printf "%s=%s" $key (get $.root.Values.telemetry.otlp.resourceAttributes $key | toString)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The config volume, shared by the roles (the topics hook has its own ConfigMap). */}}
{{- define "threds.configVolume" -}}
- name: config
  configMap:
    name: {{ .name }}
{{- end }}

{{/* Volumes of a role's pod (dict "root" . "role" ROLE). */}}
{{- define "threds.volumes" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{ include "threds.configVolume" (dict "name" (printf "%s-config" (include "threds.fullname" $root))) }}
- name: patterns
  configMap:
    name: {{ default (printf "%s-patterns" (include "threds.fullname" $root)) $v.patterns.existingConfigMap }}
- name: sessions-model
  configMap:
    name: {{ default (printf "%s-model" (include "threds.fullname" $root)) $v.sessionsModel.existingConfigMap }}
    items:
      - key: {{ ternary $v.sessionsModel.existingConfigMapKey "sessions_model.json" (ne $v.sessionsModel.existingConfigMap "") }}
        path: sessions_model.json
- name: resolver
  configMap:
    name: {{ default (printf "%s-model" (include "threds.fullname" $root)) $v.resolverConfig.existingConfigMap }}
    items:
      - key: {{ ternary $v.resolverConfig.existingConfigMapKey "resolver_config.json" (ne $v.resolverConfig.existingConfigMap "") }}
        path: resolver_config.json
{{ include "threds.commonVolumes" $root }}
{{- end }}

{{/* The writable /tmp and the Kafka CA, in every pod. */}}
{{- define "threds.commonVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
{{- end }}
{{- end }}

{{- define "threds.commonMounts" -}}
- name: config
  mountPath: {{ include "threds.paths.config" . }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: {{ include "threds.paths.kafkaCa" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "threds.volumeMounts" -}}
{{ include "threds.commonMounts" .root }}
- name: patterns
  mountPath: {{ include "threds.paths.patterns" . }}
  readOnly: true
- name: sessions-model
  mountPath: {{ include "threds.paths.sessions" . }}
  readOnly: true
- name: resolver
  mountPath: {{ include "threds.paths.resolver" . }}
  readOnly: true
{{- end }}

{{/* Annotations that roll the pods when their settings change. */}}
{{- define "threds.podChecksums" -}}
checksum/config: {{ include "threds.toml" . | sha256sum }}
checksum/secret: {{ toJson (list .Values.auth .Values.redis .Values.mongodb .Values.kafka.sasl) | sha256sum }}
{{- if .Values.patterns.rollOnChange }}
checksum/patterns: {{ include (print .Template.BasePath "/configmap-model.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/* The pod template of a role: dict "root" . "role" ROLE "spec" ROLE-VALUES. */}}
{{- define "threds.podTemplate" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $spec := .spec }}
metadata:
  labels:
    {{- include "threds.roleLabels" . | nindent 4 }}
    {{- with $spec.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- include "threds.podChecksums" $root | nindent 4 }}
    {{- with $spec.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "threds.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $v.serviceAccount.automountServiceAccountToken }}
  {{- /* No SERVICE_HOST/PORT variables: with a release named threds they would read THREDS_*. */}}
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $spec.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $spec.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .role }}
      image: {{ include "threds.image" $root | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command:
        - {{ include "threds.paths.binary" . }}
      args:
        - {{ .role }}
        - --config
        - {{ printf "%s/threds.toml" (include "threds.paths.config" .) }}
      ports:
        - name: http
          containerPort: {{ $v.port }}
          protocol: TCP
      env:
        {{- include "threds.env" . | trim | nindent 8 }}
        {{- with $spec.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      startupProbe:
        httpGet:
          path: /livez
          port: http
        {{- toYaml $v.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /livez
          port: http
        {{- toYaml $v.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        {{- toYaml $v.probes.readiness | nindent 8 }}
      {{- if and (eq .role "session") (gt (int $spec.preStopSleepSeconds) 0) }}
      lifecycle:
        preStop:
          exec:
            command: ["/bin/sleep", {{ $spec.preStopSleepSeconds | toString | quote }}]
      {{- end }}
      resources:
        {{- toYaml $spec.resources | nindent 8 }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        {{- include "threds.volumeMounts" . | nindent 8 }}
  volumes:
    {{- include "threds.volumes" . | trim | nindent 4 }}
{{- end }}
