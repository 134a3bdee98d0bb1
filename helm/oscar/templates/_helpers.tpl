{{/* Names, labels and the settings checks shared by the templates. */}}

{{- define "oscar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oscar.fullname" -}}
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

{{- define "oscar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oscar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "oscar.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "oscar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "oscar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "oscar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with the admin user, password and events token. */}}
{{- define "oscar.adminSecretName" -}}
{{- default (printf "%s-admin" (include "oscar.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* The Secret with the external MinIO's keys ("" when there are none). */}}
{{- define "oscar.storageSecretName" -}}
{{- if .Values.storage.existingSecret }}
{{- .Values.storage.existingSecret }}
{{- else if and .Values.storage.accessKey .Values.storage.secretKey }}
{{- printf "%s-storage" (include "oscar.fullname" .) }}
{{- end }}
{{- end }}

{{/* ClusterRoles are cluster-wide: the release namespace keeps two releases apart. */}}
{{- define "oscar.clusterRoleName" -}}
{{- printf "%s-%s-nodes" (include "oscar.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oscar.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "oscar.supervisorImage" -}}
{{- if .Values.supervisorImage.repository }}
{{- printf "%s:%s" .Values.supervisorImage.repository (default .Chart.AppVersion .Values.supervisorImage.tag) }}
{{- end }}
{{- end }}

{{/* Whether any backend talks to the Kubernetes API. */}}
{{- define "oscar.usesKubernetes" -}}
{{- if or (eq .Values.executor.type "kubernetes") (eq .Values.registry "kubernetes") (eq .Values.jobStore "kubernetes") .Values.knative.enabled }}true{{ end }}
{{- end }}

{{/*
Combinations the schema cannot express; `fail` makes install, upgrade and template refuse them
with a sentence instead of a control plane that crashes at start.
*/}}
{{- define "oscar.checks" -}}
{{- if and (eq .Values.storage.type "minio") (not (include "oscar.storageSecretName" .)) }}
{{- fail "storage.type=minio needs storage.accessKey and storage.secretKey, or storage.existingSecret" }}
{{- end }}
{{- if and (ne .Values.storage.type "minio") (or .Values.storage.accessKey .Values.storage.secretKey) }}
{{- fail "storage.accessKey/secretKey are the external MinIO's keys: set storage.type=minio, or leave them empty (the embedded store uses the admin credentials)" }}
{{- end }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- if not .Values.leaderElection.enabled }}
{{- fail "replicaCount > 1 needs leaderElection.enabled: two control planes would run every job twice" }}
{{- end }}
{{- if or (ne .Values.storage.type "minio") (ne .Values.registry "kubernetes") (ne .Values.jobStore "kubernetes") (ne .Values.executor.type "kubernetes") }}
{{- fail "replicaCount > 1 needs storage.type=minio, registry=kubernetes, jobStore=kubernetes and executor.type=kubernetes: each replica's data volume is its own" }}
{{- end }}
{{- end }}
{{- if and (eq .Values.jobStore "kubernetes") (ne .Values.executor.type "kubernetes") }}
{{- fail "jobStore=kubernetes keeps job records on Kubernetes Jobs: it needs executor.type=kubernetes" }}
{{- end }}
{{- if and (eq .Values.jobStore "kubernetes") .Values.hpc.executor }}
{{- fail "jobStore=kubernetes cannot record Slurm jobs: set jobStore=sqlite for hpc.executor, or offload to HPC through an interLink virtual node" }}
{{- end }}
{{- if and .Values.leaderElection.enabled (ne .Values.jobStore "kubernetes") }}
{{- fail "leaderElection.enabled needs jobStore=kubernetes: with each replica's own SQLite, the jobs a follower accepted would wait until it leads; disable leader election for one replica on SQLite" }}
{{- end }}
{{- if and .Values.leaderElection.enabled (not (include "oscar.usesKubernetes" .)) }}
{{- fail "leaderElection.enabled needs the Kubernetes API: set executor.type, registry or jobStore to kubernetes, or disable leader election" }}
{{- end }}
{{- end }}

{{/*
Add verbs to a grant: (list $grants apiGroup resource verbs). $grants maps "group|resource" to
verbs; rbac.yaml renders one rule per resource with its verbs deduplicated and sorted.
*/}}
{{- define "oscar.grant" -}}
{{- $grants := index . 0 }}
{{- $key := printf "%s|%s" (index . 1) (index . 2) }}
{{- $_ := set $grants $key (concat (get $grants $key | default list) (index . 3)) }}
{{- end }}
