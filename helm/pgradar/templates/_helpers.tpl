{{/* Names and labels. */}}
{{- define "pgradar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pgradar.fullname" -}}
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

{{- define "pgradar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pgradar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pgradar.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pgradar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "pgradar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pgradar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pgradar.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "pgradar.configMapName" -}}
{{- printf "%s-config" (include "pgradar.fullname" .) }}
{{- end }}

{{/* The Secret holding the passwords: an existing one, the one the chart creates, or none (""). */}}
{{- define "pgradar.secretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else if .Values.auth.passwords }}
{{- printf "%s-auth" (include "pgradar.fullname" .) }}
{{- end }}
{{- end }}

{{/* Where the container finds its files. */}}
{{- define "pgradar.configDir" -}}/etc/pgradar/config{{- end }}
{{- define "pgradar.secretDir" -}}/etc/pgradar/secrets{{- end }}
{{- define "pgradar.customQueriesDir" -}}/etc/pgradar/custom-queries{{- end }}

{{/* The ConfigMap holding the custom query files: the user's, the chart's (customQueries.files), or none. */}}
{{- define "pgradar.customQueriesConfigMap" -}}
{{- if .Values.customQueries.existingConfigMap }}
{{- .Values.customQueries.existingConfigMap }}
{{- else if .Values.customQueries.files }}
{{- printf "%s-custom-queries" (include "pgradar.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The custom query file names (the ConfigMap's keys), as a YAML list. */}}
{{- define "pgradar.customQueryKeys" -}}
{{- if .Values.customQueries.existingConfigMap }}
{{- toYaml .Values.customQueries.keys }}
{{- else }}
{{- toYaml (keys .Values.customQueries.files | sortAlpha) }}
{{- end }}
{{- end }}

{{/*
Checks no schema can express; each failure is one line naming the value and the fix.
A password must never reach the ConfigMap: a dsn carrying one is refused.
*/}}
{{- define "pgradar.validate" -}}
{{- if and (eq .Values.mode "standalone") (not (or .Values.targets .Values.pgbouncers)) }}
{{- fail "targets: standalone mode needs at least one target or pgbouncer to watch" }}
{{- end }}
{{- if and (gt (int .Values.shards) 1) (ne .Values.mode "standalone") }}
{{- fail "shards: sharding is for standalone mode; a sidecar watches its own database pod" }}
{{- end }}
{{- if and (gt (int .Values.shards) 1) .Values.config.shard }}
{{- fail "config.shard: with shards > 1 each replica takes its shard from its pod ordinal; leave config.shard unset" }}
{{- end }}
{{- if and (eq .Values.mode "sidecar") .Values.networkPolicy.enabled }}
{{- fail "networkPolicy.enabled: the NetworkPolicy is for standalone mode; in sidecar mode the pods belong to the database, whose own policy must admit the scrape port" }}
{{- end }}
{{- $names := list }}
{{- range $kind := list "targets" "pgbouncers" }}
{{- range $i, $t := index $.Values $kind }}
{{- if regexMatch "(://[^/@?]*:[^/@?]*@)|([?&]password=)|(^|\\s)password\\s*=" $t.dsn }}
{{- fail (printf "%s[%d].dsn: the DSN carries a password; put it in auth.passwords or the Secret auth.existingSecret (key %q) instead, it must never land in a ConfigMap" $kind $i (default $t.name $t.passwordKey)) }}
{{- end }}
{{- if has $t.name $names }}
{{- fail (printf "%s[%d].name: %q is used twice; every target and pgbouncer needs its own name" $kind $i $t.name) }}
{{- end }}
{{- $names = append $names $t.name }}
{{- if and $.Values.auth.passwords (not $.Values.auth.existingSecret) (not (hasKey $.Values.auth.passwords (default $t.name $t.passwordKey))) }}
{{- fail (printf "auth.passwords: no password for %s[%d] (key %q); add it, or name an existing Secret in auth.existingSecret" $kind $i (default $t.name $t.passwordKey)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* pgradar's configuration file (README, "Configuration"). */}}
{{- define "pgradar.config" -}}
{{- $secret := include "pgradar.secretName" . }}
{{- $cfg := deepCopy .Values.config }}
{{- range $kind := list "targets" "pgbouncers" }}
{{- $items := list }}
{{- range $t := index $.Values $kind }}
{{- $item := dict "name" $t.name "dsn" $t.dsn }}
{{- if $secret }}
{{- $_ := set $item "password_file" (printf "%s/%s" (include "pgradar.secretDir" $) (default $t.name $t.passwordKey)) }}
{{- end }}
{{- range $key := list "databases" "thresholds" "auto_explain_log" "explain_analyze" "cpus" }}
{{- if hasKey $t $key }}
{{- $_ := set $item $key (index $t $key) }}
{{- end }}
{{- end }}
{{- $items = append $items $item }}
{{- end }}
{{- if $items }}
{{- $_ := set $cfg $kind $items }}
{{- end }}
{{- end }}
{{- if include "pgradar.customQueriesConfigMap" . }}
{{- $custom := default list $cfg.custom_queries }}
{{- range $key := include "pgradar.customQueryKeys" . | fromYamlArray }}
{{- $custom = append $custom (dict "file" (printf "%s/%s" (include "pgradar.customQueriesDir" $) $key)) }}
{{- end }}
{{- $_ := set $cfg "custom_queries" $custom }}
{{- end }}
{{- $_ := set $cfg "listen" (printf ":%d" (int .Values.port)) }}
{{- toYaml $cfg }}
{{- end }}

{{/* The pgradar container: the Deployment's, and the sidecar's for charts that take a container spec. */}}
{{- define "pgradar.container" -}}
name: pgradar
image: {{ include "pgradar.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
env:
  - name: PGRADAR_CONFIG
    value: {{ include "pgradar.configDir" . }}/config.yaml
  {{- if and (eq .Values.mode "standalone") (gt (int .Values.shards) 1) }}
  - name: PGRADAR_SHARD  # the pod's ordinal (its host name pgradar-<i>) of shards
    value: "ordinal/{{ .Values.shards }}"
  {{- end }}
ports:
  - name: http
    containerPort: {{ .Values.port }}
    protocol: TCP
livenessProbe:
  {{- toYaml .Values.livenessProbe | nindent 2 }}
readinessProbe:
  {{- toYaml .Values.readinessProbe | nindent 2 }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
volumeMounts:
  - name: pgradar-config
    mountPath: {{ include "pgradar.configDir" . }}
    readOnly: true
  {{- if include "pgradar.secretName" . }}
  - name: pgradar-secrets
    mountPath: {{ include "pgradar.secretDir" . }}
    readOnly: true
  {{- end }}
  {{- if include "pgradar.customQueriesConfigMap" . }}
  - name: pgradar-custom-queries
    mountPath: {{ include "pgradar.customQueriesDir" . }}
    readOnly: true
  {{- end }}
  - name: pgradar-tmp
    mountPath: /tmp
{{- end }}

{{/* The pod volumes the container mounts (names prefixed: they join the database pod's in sidecar mode). */}}
{{- define "pgradar.volumes" -}}
- name: pgradar-config
  configMap:
    name: {{ include "pgradar.configMapName" . }}
{{- with include "pgradar.secretName" . }}
- name: pgradar-secrets
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- with include "pgradar.customQueriesConfigMap" . }}
- name: pgradar-custom-queries
  configMap:
    name: {{ . }}
{{- end }}
- name: pgradar-tmp
  emptyDir:
    sizeLimit: 16Mi
{{- end }}

{{/*
Zalando postgres-operator: a `sidecars` entry takes name, image, resources, ports and env only
(the operator builds the rest of the container), and volumes come from `additionalVolumes`
with targetContainers.
*/}}
{{- define "pgradar.zalandoSidecar" -}}
{{- $c := include "pgradar.container" . | fromYaml }}
{{- pick $c "name" "image" "env" "ports" "resources" | toYaml }}
{{- end }}

{{- define "pgradar.zalandoVolumes" -}}
{{- $mounts := (include "pgradar.container" . | fromYaml).volumeMounts }}
{{- range $v := include "pgradar.volumes" . | fromYamlArray }}
{{- range $m := $mounts }}
{{- if eq $m.name $v.name }}
- name: {{ $v.name }}
  mountPath: {{ $m.mountPath }}
  targetContainers: [pgradar]
  volumeSource:
    {{- toYaml (omit $v "name") | nindent 4 }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
