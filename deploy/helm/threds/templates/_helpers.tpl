{{/* Names, labels, the image and the checks of values that the schema cannot express. */}}

{{- define "threds.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name; roles append -engine, -session, -persistence (so at most 50). */}}
{{- define "threds.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of a role's objects: dict "root" . "role" "engine". */}}
{{- define "threds.roleName" -}}
{{- printf "%s-%s" (include "threds.fullname" .root) .role }}
{{- end }}

{{- define "threds.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "threds.selectorLabels" -}}
app.kubernetes.io/name: {{ include "threds.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "threds.labels" -}}
helm.sh/chart: {{ include "threds.chart" . }}
{{ include "threds.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: threds
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of a role: dict "root" . "role" "engine". */}}
{{- define "threds.roleSelectorLabels" -}}
{{ include "threds.selectorLabels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "threds.roleLabels" -}}
{{ include "threds.labels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "threds.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "threds.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "threds.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The chart-made Secret (JWT secret, passwords given as values). */}}
{{- define "threds.secretName" -}}
{{- include "threds.fullname" . }}
{{- end }}

{{/* Secret and key of the JWT secret. */}}
{{- define "threds.jwtSecretRef" -}}
{{- if .Values.auth.existingSecret }}
name: {{ .Values.auth.existingSecret }}
key: {{ .Values.auth.existingSecretKey }}
{{- else }}
name: {{ include "threds.secretName" . }}
key: jwt-secret
{{- end }}
{{- end }}

{{/* Whether the chart makes a Secret at all. */}}
{{- define "threds.needsSecret" -}}
{{- if or (not .Values.auth.existingSecret) (and .Values.redis.password (not .Values.redis.existingSecret)) (and .Values.kafka.sasl.enabled (not .Values.kafka.sasl.existingSecret)) (include "threds.mongodbUriInSecret" .) (include "threds.redisUrlsInSecret" .) }}true{{- end }}
{{- end }}

{{/* A MongoDB URI given as a value with credentials in it goes to the chart's Secret. */}}
{{- define "threds.mongodbUriInSecret" -}}
{{- if and (not .Values.mongodb.existingSecret) (contains "@" .Values.mongodb.uri) }}true{{- end }}
{{- end }}

{{/* Redis URLs given with credentials in them (and no password value) go to the chart's Secret. */}}
{{- define "threds.redisUrlsInSecret" -}}
{{- if and (not (include "threds.redisAuth" .)) (contains "@" (join "," .Values.redis.urls)) }}true{{- end }}
{{- end }}

{{/* Whether Redis URLs get a password injected. */}}
{{- define "threds.redisAuth" -}}
{{- if or .Values.redis.existingSecret .Values.redis.password }}true{{- end }}
{{- end }}

{{/* The Redis URLs, comma-separated, with `user:$(REDIS_PASSWORD)@` when a password is set. */}}
{{- define "threds.redisUrls" -}}
{{- $urls := list }}
{{- range .Values.redis.urls }}
{{- if include "threds.redisAuth" $ }}
{{- $urls = append $urls (regexReplaceAll "^(rediss?://)" . (printf "${1}%s:$(REDIS_PASSWORD)@" $.Values.redis.username)) }}
{{- else }}
{{- $urls = append $urls . }}
{{- end }}
{{- end }}
{{- join "," $urls }}
{{- end }}

{{/* The librdkafka properties of threds.toml: kafka.properties plus SASL and TLS settings. */}}
{{- define "threds.kafkaProperties" -}}
{{- $props := deepCopy .Values.kafka.properties }}
{{- if .Values.kafka.sasl.enabled }}
{{- $_ := set $props "security.protocol" .Values.kafka.sasl.securityProtocol }}
{{- $_ := set $props "sasl.mechanisms" .Values.kafka.sasl.mechanism }}
{{- else if .Values.kafka.tls.caSecret }}
{{- if not (hasKey $props "security.protocol") }}
{{- $_ := set $props "security.protocol" "SSL" }}
{{- end }}
{{- end }}
{{- if .Values.kafka.tls.caSecret }}
{{- $_ := set $props "ssl.ca.location" (printf "/etc/threds/kafka-ca/%s" .Values.kafka.tls.caKey) }}
{{- end }}
{{- toJson $props }}
{{- end }}

{{/* threds.toml: the `config` values with the Kafka properties merged in. */}}
{{- define "threds.toml" -}}
{{- $config := deepCopy .Values.config }}
{{- $props := include "threds.kafkaProperties" . | fromJson }}
{{- if $props }}
{{- $bus := get $config "bus" | default dict }}
{{- $kafka := get $bus "kafka" | default dict }}
{{- $_ := set $kafka "properties" (merge (get $kafka "properties" | default dict) $props) }}
{{- $_ := set $bus "kafka" $kafka }}
{{- $_ := set $config "bus" $bus }}
{{- end -}}
# threds.toml made by the Helm chart from the `config` values. THREDS_* variables set on the pods
# (listen address, model paths, node name, partitions, backends) override it.
{{ include "threds.toml.table" (dict "table" $config "path" (list)) | trim }}
{{- end }}

{{/* Cross-value checks the schema cannot express; fails with a message naming the values. */}}
{{- define "threds.validate" -}}
{{- $partitions := int .Values.topics.partitions }}
{{- $engineConfig := get .Values.config "engine" | default dict }}
{{- if hasKey $engineConfig "partitions" }}
{{- fail "config.engine.partitions: set topics.partitions instead (the chart gives it to every process as THREDS_ENGINE_PARTITIONS and to the topics hook)" }}
{{- end }}
{{- if eq (int .Values.topics.replicationFactor) 0 }}
{{- fail "topics.replicationFactor is 0: use -1 (the brokers' default) or at least 1" }}
{{- end }}
{{- if and (not .Values.engine.keda.enabled) (gt (int .Values.engine.replicas) $partitions) }}
{{- fail (printf "engine.replicas (%d) is more than topics.partitions (%d): an engine without a partition of threds.events never becomes ready; raise topics.partitions or lower engine.replicas" (int .Values.engine.replicas) $partitions) }}
{{- end }}
{{- if and .Values.engine.keda.enabled (gt (int .Values.engine.keda.minReplicas) $partitions) }}
{{- fail (printf "engine.keda.minReplicas (%d) is more than topics.partitions (%d): extra engines would get no partition" (int .Values.engine.keda.minReplicas) $partitions) }}
{{- end }}
{{- if and .Values.engine.keda.enabled (gt (int .Values.engine.keda.minReplicas) (int .Values.engine.keda.maxReplicas)) }}
{{- fail (printf "engine.keda.minReplicas (%d) is more than engine.keda.maxReplicas (%d)" (int .Values.engine.keda.minReplicas) (int .Values.engine.keda.maxReplicas)) }}
{{- end }}
{{- if and .Values.session.autoscaling.enabled (gt (int .Values.session.autoscaling.minReplicas) (int .Values.session.autoscaling.maxReplicas)) }}
{{- fail (printf "session.autoscaling.minReplicas (%d) is more than session.autoscaling.maxReplicas (%d)" (int .Values.session.autoscaling.minReplicas) (int .Values.session.autoscaling.maxReplicas)) }}
{{- end }}
{{- $serverConfig := get .Values.config "server" | default dict }}
{{- $slots := int (get $serverConfig "session_slots" | default 32) }}
{{- $sessionsKey := ternary "session.autoscaling.maxReplicas" "session.replicas" .Values.session.autoscaling.enabled }}
{{- $sessions := ternary (int .Values.session.autoscaling.maxReplicas) (int .Values.session.replicas) .Values.session.autoscaling.enabled }}
{{- if gt $sessions $slots }}
{{- fail (printf "%s (%d) is more than config.server.session_slots (%d): each session node needs a delivery slot (a partition of threds.sessions), and one without is never ready; raise config.server.session_slots before the topic is created, or run fewer session nodes" $sessionsKey $sessions $slots) }}
{{- end }}
{{- range .Values.redis.urls }}
{{- if and (include "threds.redisAuth" $) (contains "@" .) }}
{{- fail (printf "redis.urls: %q already has credentials; with redis.password or redis.existingSecret give the URLs without them" .) }}
{{- end }}
{{- end }}
{{- if and .Values.kafka.sasl.enabled (not .Values.kafka.sasl.existingSecret) (not (and .Values.kafka.sasl.username .Values.kafka.sasl.password)) }}
{{- fail "kafka.sasl.enabled needs kafka.sasl.existingSecret, or kafka.sasl.username and kafka.sasl.password" }}
{{- end }}
{{- if and .Values.session.ingress.enabled (not .Values.session.ingress.hosts) }}
{{- fail "session.ingress.enabled needs at least one entry in session.ingress.hosts" }}
{{- end }}
{{- if and .Values.patterns.existingConfigMap .Values.patterns.files }}
{{- fail "patterns.files and patterns.existingConfigMap exclude each other: put the files in your ConfigMap" }}
{{- end }}
{{- end }}
