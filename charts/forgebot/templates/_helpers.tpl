{{/* Names, labels and the pieces both Deployments share. */}}

{{- define "forgebot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "forgebot.fullname" -}}
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

{{- define "forgebot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "forgebot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "forgebot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "forgebot.labels" -}}
helm.sh/chart: {{ include "forgebot.chart" . }}
{{ include "forgebot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: forgebot
{{- end }}

{{/* The labels every sandbox Pod carries; the deny-all NetworkPolicy selects on them. */}}
{{- define "forgebot.sandboxLabels" -}}
app.kubernetes.io/part-of: forgebot
app.kubernetes.io/component: sandbox
{{- end }}

{{- define "forgebot.receiverServiceAccountName" -}}
{{- if .Values.serviceAccount.receiver.create }}
{{- default (printf "%s-receiver" (include "forgebot.fullname" .)) .Values.serviceAccount.receiver.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.receiver.name }}
{{- end }}
{{- end }}

{{- define "forgebot.workerServiceAccountName" -}}
{{- if .Values.serviceAccount.worker.create }}
{{- default (printf "%s-worker" (include "forgebot.fullname" .)) .Values.serviceAccount.worker.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.worker.name }}
{{- end }}
{{- end }}

{{- define "forgebot.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The in-release PostgreSQL Service, named as the postgresql chart names it. */}}
{{- define "forgebot.postgresql.host" -}}
{{- if .Values.postgresql.fullnameOverride }}
{{- .Values.postgresql.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains "postgresql" .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-postgresql" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
The store's environment. External database: the whole URL from a Secret. In-release
PostgreSQL: a URL without a password, and the password in PGPASSWORD, which libpq reads, so
no password is ever written into a manifest and none needs URL-escaping.
*/}}
{{- define "forgebot.storeEnv" -}}
{{- if .Values.postgresql.enabled }}
- name: FORGEBOT_STORE__URL
  value: {{ printf "postgresql+psycopg://%s@%s:%d/%s" .Values.postgresql.auth.username (include "forgebot.postgresql.host" .) (int (dig "primary" "service" "ports" "postgresql" 5432 .Values.postgresql)) .Values.postgresql.auth.database | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "postgresql.auth.existingSecret is required" .Values.postgresql.auth.existingSecret }}
      key: {{ .Values.postgresql.auth.secretKeys.userPasswordKey }}
{{- else }}
- name: FORGEBOT_STORE__URL
  valueFrom:
    secretKeyRef:
      name: {{ required "store.existingSecret is required (or set postgresql.enabled=true)" .Values.store.existingSecret }}
      key: {{ .Values.store.urlKey }}
{{- end }}
{{- end }}

{{/* Environment both roles share: where the config is, the port, the store. */}}
{{- define "forgebot.commonEnv" -}}
- name: FORGEBOT_CONFIG
  value: /etc/forgebot/forgebot.yml
- name: FORGEBOT_WEB__PORT
  value: {{ .Values.containerPort | quote }}
{{- if .Values.policy.existingConfigMap }}
- name: FORGEBOT_POLICY_FILE
  value: {{ printf "/etc/forgebot-policy/%s" .Values.policy.key | quote }}
{{- end }}
{{ include "forgebot.storeEnv" . | trim }}
{{- end }}

{{- define "forgebot.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 5
  failureThreshold: {{ .Values.probes.startupFailureThreshold }}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}

{{/* Volumes both roles share: the config, /tmp and the data folder (the root is read-only). */}}
{{- define "forgebot.volumes" -}}
- name: config
  configMap:
    name: {{ include "forgebot.fullname" .root }}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
- name: data
  emptyDir:
    sizeLimit: {{ .dataSize }}
{{- if .root.Values.policy.existingConfigMap }}
- name: policy
  configMap:
    name: {{ .root.Values.policy.existingConfigMap }}
{{- end }}
{{- end }}

{{- define "forgebot.volumeMounts" -}}
- name: config
  mountPath: /etc/forgebot
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/forgebot
{{- if .Values.policy.existingConfigMap }}
- name: policy
  mountPath: /etc/forgebot-policy
  readOnly: true
{{- end }}
{{- end }}
