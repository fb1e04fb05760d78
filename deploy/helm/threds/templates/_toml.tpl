{{/*
A TOML writer for threds.toml. Helm's toToml writes every number of the values as a float
(`batch = 256.0`), which Threds refuses for whole-number settings; this one writes whole numbers
as integers. Keys are bare when they can be, quoted otherwise; null values are left out (unset).
*/}}

{{/* A table: dict "table" MAP "path" LIST-OF-KEYS. Plain keys first, then sub-tables. */}}
{{- define "threds.toml.table" -}}
{{- $table := .table }}
{{- $path := .path }}
{{- range $key := keys $table | sortAlpha }}
{{- $value := get $table $key }}
{{- if and (not (kindIs "map" $value)) (not (kindIs "invalid" $value)) }}
{{ include "threds.toml.key" $key }} = {{ include "threds.toml.value" $value }}
{{- end }}
{{- end }}
{{- range $key := keys $table | sortAlpha }}
{{- $value := get $table $key }}
{{- if kindIs "map" $value }}
{{- $sub := append $path $key }}

[{{ include "threds.toml.path" $sub }}]
{{- include "threds.toml.table" (dict "table" $value "path" $sub) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "threds.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{- define "threds.toml.path" -}}
{{- $keys := list }}
{{- range . }}{{ $keys = append $keys (include "threds.toml.key" .) }}{{ end }}
{{- join "." $keys }}
{{- end }}

{{- define "threds.toml.value" -}}
{{- if kindIs "string" . }}{{ toJson . }}
{{- else if kindIs "bool" . }}{{ ternary "true" "false" . }}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) }}
{{- if eq (float64 .) (float64 (int64 .)) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) (kindIs "uint64" .) }}{{ . }}
{{- else if kindIs "slice" . }}
{{- $items := list }}
{{- range . }}{{ $items = append $items (include "threds.toml.value" .) }}{{ end }}
{{- printf "[%s]" (join ", " $items) }}
{{- else }}
{{- fail (printf "config: %v is not a value threds.toml can hold (a string, number, boolean or list of them)" .) }}
{{- end }}
{{- end }}
