{{/*
The control plane's environment: one OSCAR_* variable per setting of oscar/settings.py.
Optional settings (null or empty values) are left out, so the control plane's own default
applies. Secret values come from Secrets, never from the Deployment's spec.
*/}}

{{- define "oscar.envValue" -}}
{{- $name := index . 0 }}{{ $value := index . 1 }}
{{- if kindIs "slice" $value }}{{ $value = join "," $value }}{{ end }}
{{- /* Values files give every number as a float: 67108864 would print as 6.7108864e+07. */}}
{{- if and (kindIs "float64" $value) (eq $value (floor $value)) }}{{ $value = int64 $value }}{{ end }}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) }}
- name: {{ $name }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end }}

{{- define "oscar.envSecret" }}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 }}
      key: {{ index . 2 }}
{{- end }}

{{- define "oscar.env" -}}
{{- $v := .Values }}
{{- $admin := include "oscar.adminSecretName" . }}
# Server
{{- include "oscar.envValue" (list "OSCAR_HOST" "0.0.0.0") }}
{{- include "oscar.envValue" (list "OSCAR_PORT" $v.server.port) }}
{{- include "oscar.envValue" (list "OSCAR_DATA_DIR" "/var/lib/oscar") }}
{{- include "oscar.envValue" (list "OSCAR_LOG_LEVEL" $v.server.logLevel) }}
{{- /* An empty list means "no origin": it must reach the server as an empty string. */}}
- name: OSCAR_CORS_ORIGINS
  value: {{ join "," $v.server.corsOrigins | quote }}
{{- include "oscar.envValue" (list "OSCAR_MAX_BODY_BYTES" $v.server.maxBodyBytes) }}
{{- include "oscar.envValue" (list "OSCAR_EXECUTION_LOG_SIZE" $v.server.executionLogSize) }}
{{- include "oscar.envValue" (list "OSCAR_NAME" $v.server.name) }}
{{- include "oscar.envValue" (list "OSCAR_REUSE_PORT" $v.server.reusePort) }}
# Admin account and OIDC
{{- include "oscar.envSecret" (list "OSCAR_USERNAME" $admin $v.auth.secretKeys.username) }}
{{- include "oscar.envSecret" (list "OSCAR_PASSWORD" $admin $v.auth.secretKeys.password) }}
{{- include "oscar.envSecret" (list "OSCAR_EVENTS_TOKEN" $admin $v.auth.secretKeys.eventsToken) }}
{{- include "oscar.envValue" (list "OSCAR_USERS_ADMIN" $v.auth.usersAdmin) }}
{{- include "oscar.envValue" (list "OSCAR_LOCAL_USER_SERVICES" $v.auth.localUserServices) }}
{{- include "oscar.envValue" (list "OSCAR_OIDC_ISSUERS" $v.auth.oidc.issuers) }}
{{- include "oscar.envValue" (list "OSCAR_OIDC_GROUPS" $v.auth.oidc.groups) }}
{{- include "oscar.envValue" (list "OSCAR_OIDC_AUDIENCE" $v.auth.oidc.audience) }}
{{- include "oscar.envValue" (list "OSCAR_OIDC_CLIENT_ID" $v.auth.oidc.clientId) }}
{{- include "oscar.envValue" (list "OSCAR_OIDC_SCOPES" $v.auth.oidc.scopes) }}
{{- include "oscar.envValue" (list "OSCAR_OIDC_LEEWAY" $v.auth.oidc.leeway) }}
# Default object store
{{- include "oscar.envValue" (list "OSCAR_STORAGE" $v.storage.type) }}
{{- include "oscar.envValue" (list "OSCAR_S3_PORT" $v.storage.s3Port) }}
{{- include "oscar.envValue" (list "OSCAR_MINIO_ENDPOINT" $v.storage.endpoint) }}
{{- $jobEndpoint := $v.storage.jobEndpoint }}
{{- if and (not $jobEndpoint) (eq $v.storage.type "embedded") (eq $v.executor.type "kubernetes") }}
{{- /* Jobs' pods cannot reach the control plane's loopback: give them its Service. */}}
{{- $jobEndpoint = printf "http://%s.%s.svc:%v" (include "oscar.fullname" .) .Release.Namespace $v.storage.s3Port }}
{{- end }}
{{- include "oscar.envValue" (list "OSCAR_JOB_MINIO_ENDPOINT" $jobEndpoint) }}
{{- include "oscar.envValue" (list "OSCAR_MINIO_REGION" $v.storage.region) }}
{{- include "oscar.envValue" (list "OSCAR_MINIO_TLS_VERIFY" $v.storage.tlsVerify) }}
{{- $storageSecret := include "oscar.storageSecretName" . }}
{{- if $storageSecret }}
{{- include "oscar.envSecret" (list "OSCAR_MINIO_ACCESS_KEY" $storageSecret $v.storage.secretKeys.accessKey) }}
{{- include "oscar.envSecret" (list "OSCAR_MINIO_SECRET_KEY" $storageSecret $v.storage.secretKeys.secretKey) }}
{{- end }}
# Backends
{{- include "oscar.envValue" (list "OSCAR_EXECUTOR" $v.executor.type) }}
{{- include "oscar.envValue" (list "OSCAR_MAX_CONCURRENT_JOBS" $v.executor.maxConcurrentJobs) }}
{{- include "oscar.envValue" (list "OSCAR_SUPERVISOR_POOL" $v.executor.supervisorPool) }}
{{- include "oscar.envValue" (list "OSCAR_JOB_CGROUPS" $v.executor.jobCgroups) }}
{{- include "oscar.envValue" (list "OSCAR_REGISTRY" $v.registry) }}
{{- include "oscar.envValue" (list "OSCAR_JOB_STORE" $v.jobStore) }}
{{- include "oscar.envValue" (list "OSCAR_SUPERVISOR_IMAGE" (include "oscar.supervisorImage" .)) }}
{{- /* The chart's supervisor image holds the static build, which runs in any job image. */}}
{{- $supervisorCommand := $v.supervisorCommand }}
{{- if and (not $supervisorCommand) $v.supervisorImage.repository }}{{ $supervisorCommand = "/oscar/bin/supervisor-static" }}{{ end }}
{{- include "oscar.envValue" (list "OSCAR_SUPERVISOR_COMMAND" $supervisorCommand) }}
{{- include "oscar.envValue" (list "OSCAR_JOB_TIMEOUT" $v.jobs.timeout) }}
{{- include "oscar.envValue" (list "OSCAR_QUEUE_TIMEOUT" $v.jobs.queueTimeout) }}
{{- include "oscar.envValue" (list "OSCAR_SYNC_TIMEOUT" $v.jobs.syncTimeout) }}
{{- include "oscar.envValue" (list "OSCAR_SYNC_QUEUE_WAIT" $v.jobs.syncQueueWait) }}
{{- include "oscar.envValue" (list "OSCAR_MAX_JOBS_PER_SERVICE" $v.jobs.maxPerService) }}
{{- include "oscar.envValue" (list "OSCAR_BRIDGE_MAX_PENDING" $v.bridges.maxPending) }}
{{- include "oscar.envValue" (list "OSCAR_BRIDGE_RETRY_MAX" $v.bridges.retryMax) }}
# interLink virtual nodes and Slurm
{{- include "oscar.envValue" (list "OSCAR_CLOUD_INTERLINK_NODE" $v.interlink.cloudNode) }}
{{- include "oscar.envValue" (list "OSCAR_HPC_EXECUTOR" $v.hpc.executor) }}
{{- include "oscar.envValue" (list "OSCAR_HPC_MAX_CONCURRENT_JOBS" $v.hpc.maxConcurrentJobs) }}
{{- include "oscar.envValue" (list "OSCAR_SLURM_CONF" $v.hpc.slurm.conf) }}
{{- include "oscar.envValue" (list "OSCAR_SLURM_SSH_HOST" $v.hpc.slurm.sshHost) }}
{{- include "oscar.envValue" (list "OSCAR_SLURM_BATCH_SIZE" $v.hpc.slurm.batchSize) }}
{{- include "oscar.envValue" (list "OSCAR_SLURM_ARRAY_TASKS" $v.hpc.slurm.arrayTasks) }}
{{- include "oscar.envValue" (list "OSCAR_SLURM_BATCH_WINDOW" $v.hpc.slurm.batchWindow) }}
# Knative
{{- include "oscar.envValue" (list "OSCAR_SERVERLESS_BACKEND" (ternary "knative" "" $v.knative.enabled)) }}
# Namespaces, the Kubernetes API and leader election
{{- include "oscar.envValue" (list "OSCAR_NAMESPACE" .Release.Namespace) }}
{{- include "oscar.envValue" (list "OSCAR_SERVICES_NAMESPACE" $v.servicesNamespace.name) }}
{{- if $v.kubeconfigSecret }}
{{- include "oscar.envValue" (list "OSCAR_KUBECONFIG" "/etc/oscar/kubeconfig/kubeconfig") }}
{{- end }}
{{- include "oscar.envValue" (list "OSCAR_LEADER_ELECTION" $v.leaderElection.enabled) }}
{{- include "oscar.envValue" (list "OSCAR_LEASE_NAME" $v.leaderElection.leaseName) }}
{{- include "oscar.envValue" (list "OSCAR_LEASE_DURATION" $v.leaderElection.leaseDuration) }}
{{- include "oscar.envValue" (list "OSCAR_LEASE_NAMESPACE" .Release.Namespace) }}
- name: OSCAR_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
