{{/* Names and labels shared by every template. */}}
{{- define "ks.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ks.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "ks.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "ks.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ks.selector" -}}
app.kubernetes.io/name: {{ include "ks.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ks.labels" -}}
{{ include "ks.selector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The image, always by digest. */}}
{{- define "ks.image" -}}
{{- if not (hasPrefix "sha256:" .Values.image.digest) -}}
{{- fail "image.digest must be a sha256:... digest: the chart pins images by digest, never by tag" -}}
{{- end -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- end -}}

{{- define "ks.http" -}}
{{- eq .Values.monitor.source "http" -}}
{{- end -}}

{{- define "ks.scheme" -}}
{{- if .Values.ingest.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}

{{/* Under mutual TLS the kubelet cannot reach /healthz (it has no client certificate). */}}
{{- define "ks.mtls" -}}
{{- and .Values.ingest.tls.enabled .Values.ingest.mtls.enabled -}}
{{- end -}}

{{/* The restricted container securityContext every container of the chart runs with. */}}
{{- define "ks.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.uid }}
runAsGroup: {{ .Values.gid }}
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "ks.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.uid }}
runAsGroup: {{ .Values.gid }}
fsGroup: {{ .Values.gid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "ks.analyzerHost" -}}
{{- printf "%s-analyzer.%s.svc" (include "ks.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* Checks on combinations of values that cannot work. */}}
{{- define "ks.validate" -}}
{{- if not (has .Values.monitor.source (list "http" "nats")) -}}
{{- fail (printf "monitor.source must be http or nats, not %q" .Values.monitor.source) -}}
{{- end -}}
{{- if and (eq .Values.monitor.source "http") (not .Values.ingest.token.existingSecret) (not (eq (include "ks.mtls" .) "true")) -}}
{{- fail "the HTTP receiver needs authentication off loopback: enable ingest.mtls (with ingest.tls) or set ingest.token.existingSecret" -}}
{{- end -}}
{{- if and .Values.vault.postgres.enabled (not .Values.vault.signingKey.existingSecret) -}}
{{- fail "vault.postgres needs vault.signingKey.existingSecret: every monitor of a PostgreSQL vault signs with the same key" -}}
{{- end -}}
{{- end -}}
