{{/* Labels of every object of this release. */}}
{{- define "tollgate.labels" -}}
app.kubernetes.io/name: tollgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The operator's pod labels (its Deployment's selector). */}}
{{- define "tollgate.operatorSelector" -}}
app.kubernetes.io/name: tollgate
app.kubernetes.io/component: operator
{{- end -}}

{{/* An image reference: registry/repository:tag (tag defaults to appVersion). */}}
{{- define "tollgate.image" -}}
{{- $root := index . 0 -}}
{{- $img := index . 1 -}}
{{- $tag := default $root.Chart.AppVersion $img.tag -}}
{{- if $root.Values.image.registry -}}
{{ printf "%s/%s:%s" $root.Values.image.registry $img.repository $tag }}
{{- else -}}
{{ printf "%s:%s" $img.repository $tag }}
{{- end -}}
{{- end -}}

{{/* Whether the operator may read Secrets in every namespace. */}}
{{- define "tollgate.clusterWideSecrets" -}}
{{- if has "*" .Values.secretNamespaces }}true{{ end -}}
{{- end -}}
