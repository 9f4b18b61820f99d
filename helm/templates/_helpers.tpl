{{/* Names: <release>-<chart> unless the release name already contains the chart name. */}}
{{- define "randomize.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "randomize.fullname" -}}
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

{{- define "randomize.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "randomize.labels" -}}
helm.sh/chart: {{ include "randomize.chart" . }}
{{ include "randomize.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "randomize.selectorLabels" -}}
app.kubernetes.io/name: {{ include "randomize.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* repository@digest when a digest is given (immutable), else repository:tag. */}}
{{- define "randomize.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
WORKERS when config.workers is empty: the CPU request rounded up (at least 1). The
server's own default, one per core the node has, would start dozens of workers in a
pod entitled to a fraction of one.
*/}}
{{- define "randomize.workers" -}}
{{- if .Values.config.workers }}
{{- .Values.config.workers }}
{{- else }}
{{- $cpu := toString (dig "requests" "cpu" "1" .Values.resources) }}
{{- $millis := 0 }}
{{- if hasSuffix "m" $cpu }}
{{- $millis = trimSuffix "m" $cpu | int }}
{{- else }}
{{- $millis = mulf (float64 $cpu) 1000 | int }}
{{- end }}
{{- max 1 (div (add $millis 999) 1000) }}
{{- end }}
{{- end }}

{{/*
What the chart's Secret is made from, for the checksum that rolls pods when it changes.
The Secret's own text cannot serve: a generated password is new at each render, so the
checksum would differ between the Deployment and the StatefulSet, and between install
and the first upgrade. The generated password itself never changes (it is looked up).
*/}}
{{- define "randomize.secretInputs" -}}
{{- toJson (list (include "randomize.mode" .) .Values.postgresql.username .Values.postgresql.password .Values.postgresql.database .Values.externalDatabase .Values.jwt.secret .Values.jwt.publicKey .Values.jwt.algorithm .Values.audit.signingKey .Values.secrets) | sha256sum }}
{{- end }}

{{/* The in-chart PostgreSQL restarts only when its own credentials change. */}}
{{- define "randomize.postgresql.secretInputs" -}}
{{- toJson (list .Values.postgresql.username .Values.postgresql.password .Values.postgresql.database) | sha256sum }}
{{- end }}

{{/* PodDisruptionBudget API: policy/v1 from 1.21, policy/v1beta1 before. */}}
{{- define "randomize.pdb.apiVersion" -}}
{{- if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version }}policy/v1{{ else }}policy/v1beta1{{ end }}
{{- end }}

{{/* HorizontalPodAutoscaler API: autoscaling/v2 from 1.23, v2beta2 before. */}}
{{- define "randomize.hpa.apiVersion" -}}
{{- if semverCompare ">=1.23-0" .Capabilities.KubeVersion.Version }}autoscaling/v2{{ else }}autoscaling/v2beta2{{ end }}
{{- end }}

{{/*
Storage mode: "sqlite", "postgresql" (in-chart) or "external". Contradictory values stop the
render with a message instead of deploying something else than was asked for.
*/}}
{{- define "randomize.mode" -}}
{{- if and .Values.postgresql.enabled .Values.externalDatabase.enabled }}
{{- fail "choose one of postgresql.enabled and externalDatabase.enabled" }}
{{- else if .Values.postgresql.enabled }}postgresql
{{- else if .Values.externalDatabase.enabled }}external
{{- else }}sqlite
{{- end }}
{{- end }}

{{- define "randomize.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "randomize.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Does this chart render its own Secret? */}}
{{- define "randomize.ownSecret" -}}
{{- $mode := include "randomize.mode" . }}
{{- if or (eq $mode "postgresql") (and (eq $mode "external") (not .Values.secrets.existingSecret)) (include "randomize.ownJwt" .) (include "randomize.ownSigningKey" .) (include "randomize.ownMigrationUrl" .) }}true{{ end }}
{{- end }}

{{/* Does the JWT key come from this chart's Secret (inline value, not the existingSecret)? */}}
{{- define "randomize.ownJwt" -}}
{{- if and (not (and .Values.secrets.existingSecret .Values.secrets.jwtKey)) (or .Values.jwt.secret .Values.jwt.publicKey) }}true{{ end }}
{{- end }}

{{/* Does the audit signing key come from this chart's Secret? */}}
{{- define "randomize.ownSigningKey" -}}
{{- if and (not (and .Values.secrets.existingSecret .Values.secrets.signingKeyKey)) .Values.audit.signingKey }}true{{ end }}
{{- end }}

{{/* Is there an audit signing key at all (either source)? */}}
{{- define "randomize.signingKey" -}}
{{- if or (and .Values.secrets.existingSecret .Values.secrets.signingKeyKey) (include "randomize.ownSigningKey" .) }}true{{ end }}
{{- end }}

{{/* Does the migration URL come from this chart's Secret? */}}
{{- define "randomize.ownMigrationUrl" -}}
{{- if and (eq (include "randomize.mode" .) "external") (not (and .Values.secrets.existingSecret .Values.secrets.migrationUrlKey)) .Values.externalDatabase.migrationUrl }}true{{ end }}
{{- end }}

{{/* Do migrations run as a separate (owner) role, in the init container? */}}
{{- define "randomize.migrationRole" -}}
{{- if and (eq (include "randomize.mode" .) "external") (or (and .Values.secrets.existingSecret .Values.secrets.migrationUrlKey) .Values.externalDatabase.migrationUrl) }}true{{ end }}
{{- end }}

{{/* The migration URL as a projected-volume source (only the init container mounts it). */}}
{{- define "randomize.migrationSource" -}}
{{- $useExisting := and .Values.secrets.existingSecret .Values.secrets.migrationUrlKey }}
- secret:
    name: {{ ternary .Values.secrets.existingSecret (include "randomize.fullname" .) (not (not $useExisting)) }}
    items:
      - key: {{ ternary .Values.secrets.migrationUrlKey "migration-database-url" (not (not $useExisting)) }}
        path: migration-database-url
{{- end }}

{{/* The file (and chart Secret key) holding the JWT key: by algorithm. */}}
{{- define "randomize.jwtFile" -}}
{{- if eq .Values.jwt.algorithm "HS256" }}jwt-secret{{ else }}jwt-public-key{{ end }}
{{- end }}

{{/*
The app's secret files, as projected-volume sources: DATABASE_URL (PostgreSQL modes) and
the JWT key, each from the operator's existingSecret or from this chart's Secret.
*/}}
{{- define "randomize.secretSources" -}}
{{- $mode := include "randomize.mode" . }}
{{- $own := include "randomize.fullname" . }}
{{- $existing := .Values.secrets.existingSecret }}
{{- if eq $mode "postgresql" }}
- secret:
    name: {{ $own }}
    items:
      - key: database-url
        path: database-url
{{- else if eq $mode "external" }}
- secret:
    name: {{ default $own $existing }}
    items:
      - key: {{ ternary .Values.secrets.databaseUrlKey "database-url" (ne $existing "") }}
        path: database-url
{{- end }}
{{- if and $existing .Values.secrets.jwtKey }}
- secret:
    name: {{ $existing }}
    items:
      - key: {{ .Values.secrets.jwtKey }}
        path: {{ include "randomize.jwtFile" . }}
{{- else if include "randomize.ownJwt" . }}
- secret:
    name: {{ $own }}
    items:
      - key: {{ include "randomize.jwtFile" . }}
        path: {{ include "randomize.jwtFile" . }}
{{- end }}
{{- if and $existing .Values.secrets.signingKeyKey }}
- secret:
    name: {{ $existing }}
    items:
      - key: {{ .Values.secrets.signingKeyKey }}
        path: audit-signing-key
{{- else if include "randomize.ownSigningKey" . }}
- secret:
    name: {{ $own }}
    items:
      - key: audit-signing-key
        path: audit-signing-key
{{- end }}
{{- end }}

{{/* Where secret files are mounted in the app container. */}}
{{- define "randomize.secretsDir" -}}/var/run/secrets/randomize{{- end }}

{{/* The in-chart PostgreSQL password: the value, else the one already in the cluster, else new. */}}
{{- define "randomize.postgresql.password" -}}
{{- if .Values.postgresql.password }}
{{- .Values.postgresql.password }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "randomize.fullname" .) }}
{{- if and $existing (index $existing.data "postgres-password") }}
{{- index $existing.data "postgres-password" | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- end }}

{{/* Values that cannot work together stop the render with a reason. */}}
{{- define "randomize.validate" -}}
{{- $mode := include "randomize.mode" . }}
{{- if and (eq $mode "external") (not .Values.secrets.existingSecret) (not .Values.externalDatabase.url) }}
{{- fail "externalDatabase.enabled needs externalDatabase.url or secrets.existingSecret (with secrets.databaseUrlKey)" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (eq $mode "sqlite") }}
{{- fail "autoscaling needs PostgreSQL (postgresql.enabled or externalDatabase.enabled): SQLite runs exactly one replica" }}
{{- end }}
{{- if and (eq .Values.jwt.algorithm "HS256") .Values.jwt.publicKey }}
{{- fail "jwt.publicKey is for RS256/ES256/EdDSA; HS256 uses jwt.secret" }}
{{- end }}
{{- if and (ne .Values.jwt.algorithm "HS256") .Values.jwt.secret }}
{{- fail "jwt.secret is for HS256; RS256/ES256/EdDSA use jwt.publicKey" }}
{{- end }}
{{- end }}

{{/* The API server's pods (the in-chart PostgreSQL shares name/instance, not component). */}}
{{- define "randomize.serverSelectorLabels" -}}
{{ include "randomize.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}
