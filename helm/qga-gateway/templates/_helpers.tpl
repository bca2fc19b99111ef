{{/*
Names, labels and checks shared by the templates.
*/}}

{{/* The chart name, or nameOverride; 63 characters at most (a DNS label). */}}
{{- define "qga-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* RELEASE-NAME, or RELEASE when the release name already holds the chart name, or fullnameOverride. */}}
{{- define "qga-gateway.fullname" -}}
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

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "qga-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every resource carries. */}}
{{- define "qga-gateway.labels" -}}
helm.sh/chart: {{ include "qga-gateway.chart" . }}
{{ include "qga-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that select the pods; never change them: a DaemonSet's selector is immutable. */}}
{{- define "qga-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qga-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "qga-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "qga-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "qga-gateway.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding the identities file: yours (identities.existingSecret) or the chart's. */}}
{{- define "qga-gateway.identitiesSecretName" -}}
{{- default (printf "%s-identities" (include "qga-gateway.fullname" .)) .Values.identities.existingSecret }}
{{- end }}

{{/* The ConfigMap's mount point; the gateway finds the file through QGA_GATEWAY_CONFIG. */}}
{{- define "qga-gateway.configDir" -}}
/etc/qga-gateway/config
{{- end }}

{{/*
"true" when the gateway reaches a libvirtd through a unix socket, else empty: libvirt enabled, and libvirt.uri (or, when
libvirt.hosts lists any, one of theirs) with the unix transport, which the gateway takes when the scheme names none
(qemu:///system) or names unix. Only then does the pod get the node's socket directory and the libvirt group.
*/}}
{{- define "qga-gateway.libvirtUnixSocket" -}}
{{- $libvirt := .Values.config.libvirt | default dict }}
{{- if dig "enabled" true $libvirt }}
{{- $uris := list }}
{{- range dig "hosts" list $libvirt }}
{{- $uris = append $uris .uri }}
{{- end }}
{{- if not $uris }}
{{- $uris = list (dig "uri" "qemu:///system" $libvirt) }}
{{- end }}
{{- $unix := false }}
{{- range $uris }}
{{- $scheme := (urlParse .).scheme }}
{{- if or (not (contains "+" $scheme)) (hasSuffix "+unix" $scheme) }}
{{- $unix = true }}
{{- end }}
{{- end }}
{{- if $unix }}true{{ end }}
{{- end }}
{{- end }}

{{/*
The node directories of the agent sockets config.agentSockets names (each glob's directory, each socket's), as a JSON
list without repeats: each is mounted at the same path, so the configured paths hold in the container.
*/}}
{{- define "qga-gateway.agentSocketDirs" -}}
{{- $agentSockets := .Values.config.agentSockets | default dict }}
{{- $dirs := list }}
{{- range dig "directories" list $agentSockets }}
{{- $dirs = append $dirs (dir .glob) }}
{{- end }}
{{- range dig "sockets" list $agentSockets }}
{{- $dirs = append $dirs (dir .path) }}
{{- end }}
{{- $dirs | uniq | toJson }}
{{- end }}

{{/*
Settings that would make a broken release, refused at render time with a message saying what to change.
values.schema.json checks types; these check values against each other.
*/}}
{{- define "qga-gateway.validate" -}}
{{- $graceMs := int (default 30000 .Values.config.shutdownGraceMs) }}
{{- if le (mul (int .Values.terminationGracePeriodSeconds) 1000) (add $graceMs 5000) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed config.shutdownGraceMs (%d ms) plus the gateway's own 5 s margin" (int .Values.terminationGracePeriodSeconds) $graceMs) }}
{{- end }}
{{- if eq (dir .Values.config.auth.identitiesFile) (include "qga-gateway.configDir" .) }}
{{- fail (printf "config.auth.identitiesFile must not be in %s, where the ConfigMap is mounted" (include "qga-gateway.configDir" .)) }}
{{- end }}
{{- if and (include "qga-gateway.libvirtUnixSocket" .) (eq (dir .Values.config.auth.identitiesFile) .Values.libvirt.mountPath) }}
{{- fail "config.auth.identitiesFile must not be in libvirt.mountPath" }}
{{- end }}
{{- if .Values.serviceMonitor.enabled }}
{{- if not .Values.config.metrics.enabled }}
{{- fail "serviceMonitor.enabled needs config.metrics.enabled" }}
{{- end }}
{{- if and (not .Values.config.metrics.public) (not .Values.serviceMonitor.tokenSecret.name) }}
{{- fail "serviceMonitor.enabled needs serviceMonitor.tokenSecret.name (a Secret holding a token whose hash is an identity with scope metrics), or config.metrics.public: true" }}
{{- end }}
{{- end }}
{{- end }}
