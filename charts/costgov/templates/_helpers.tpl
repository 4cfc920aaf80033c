{{- define "costgov.name" -}}costgov{{- end -}}
{{- define "costgov.fullname" -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}-costgov{{- end -}}
{{- define "costgov.labels" -}}
app.kubernetes.io/name: costgov
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "costgov.selector" -}}
app.kubernetes.io/name: costgov
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- /* Every kind the admission webhook judges. `pod`: the CEL path of its one pod spec
(GPU-less objects are then never sent); `crds`: group/version/Kind of another project's
resource, registered only when the cluster serves one of them; `resource: x/scale`: the
scale subresource (kubectl scale, autoscalers), judged at the new replica count. */ -}}
{{- define "costgov.webhookRules" -}}
- {name: jobs, group: batch, resource: jobs, pod: object.spec.template.spec}
- {name: cronjobs, group: batch, resource: cronjobs, pod: object.spec.jobTemplate.spec.template.spec}
- {name: pods, group: "", resource: pods, pod: object.spec}
- {name: deployments, group: apps, resource: deployments, pod: object.spec.template.spec}
- {name: statefulsets, group: apps, resource: statefulsets, pod: object.spec.template.spec}
- {name: replicasets, group: apps, resource: replicasets, pod: object.spec.template.spec}
- {name: deployments-scale, group: apps, resource: deployments/scale}
- {name: statefulsets-scale, group: apps, resource: statefulsets/scale}
- {name: replicasets-scale, group: apps, resource: replicasets/scale}
- {name: pytorchjobs, group: kubeflow.org, resource: pytorchjobs, crds: [kubeflow.org/v1/PyTorchJob]}
- {name: tfjobs, group: kubeflow.org, resource: tfjobs, crds: [kubeflow.org/v1/TFJob]}
- {name: mpijobs, group: kubeflow.org, resource: mpijobs, crds: [kubeflow.org/v2beta1/MPIJob, kubeflow.org/v1/MPIJob]}
- {name: xgboostjobs, group: kubeflow.org, resource: xgboostjobs, crds: [kubeflow.org/v1/XGBoostJob]}
- {name: paddlejobs, group: kubeflow.org, resource: paddlejobs, crds: [kubeflow.org/v1/PaddleJob]}
- {name: jaxjobs, group: kubeflow.org, resource: jaxjobs, crds: [kubeflow.org/v1/JAXJob]}
- {name: jobsets, group: jobset.x-k8s.io, resource: jobsets, crds: [jobset.x-k8s.io/v1alpha2/JobSet]}
- {name: leaderworkersets, group: leaderworkerset.x-k8s.io, resource: leaderworkersets, crds: [leaderworkerset.x-k8s.io/v1/LeaderWorkerSet]}
- {name: rayjobs, group: ray.io, resource: rayjobs, crds: [ray.io/v1/RayJob]}
- {name: rayclusters, group: ray.io, resource: rayclusters, crds: [ray.io/v1/RayCluster]}
- {name: leaderworkersets-scale, group: leaderworkerset.x-k8s.io, resource: leaderworkersets/scale, crds: [leaderworkerset.x-k8s.io/v1/LeaderWorkerSet]}
- {name: pytorchjobs-scale, group: kubeflow.org, resource: pytorchjobs/scale, crds: [kubeflow.org/v1/PyTorchJob]}
- {name: paddlejobs-scale, group: kubeflow.org, resource: paddlejobs/scale, crds: [kubeflow.org/v1/PaddleJob]}
- {name: jaxjobs-scale, group: kubeflow.org, resource: jaxjobs/scale, crds: [kubeflow.org/v1/JAXJob]}
- {name: costpolicies, group: costgov.io, resource: costpolicies, scope: Cluster}
- {name: trainingjobbudgets, group: costgov.io, resource: trainingjobbudgets}
- {name: inferencedeployments, group: costgov.io, resource: inferencedeployments}
- {name: costapprovals, group: costgov.io, resource: costapprovals}
{{- end -}}
{{- /* CEL: a resource name (k) costgov counts as GPUs: whole GPUs, MIG slices, GPUs the
NVIDIA device plugin renames when it shares them (nvidia.com/gpu.shared...). */ -}}
{{- define "costgov.gpuResource" -}}
k == 'nvidia.com/gpu' || k == 'amd.com/gpu' || k.startsWith('nvidia.com/mig-') || k.startsWith('nvidia.com/gpu.') || k.startsWith('nvidia.com/gpu-')
{{- end -}}
{{- /* CEL: some container in the list (a CEL path) requests a GPU, or claims devices
through DRA (costgov judges that as GPU work it cannot price). */ -}}
{{- define "costgov.requestsGPUs" -}}
{{ . }}.exists(c, has(c.resources) && ((has(c.resources.limits) && c.resources.limits.exists(k, {{ include "costgov.gpuResource" . }})) || (has(c.resources.requests) && c.resources.requests.exists(k, {{ include "costgov.gpuResource" . }})) || (has(c.resources.claims) && size(c.resources.claims) > 0)))
{{- end -}}
{{- /* The webhook's CA and serving certificate (not in cert-manager mode), as the base64 data
of the <fullname>-webhook-tls Secret plus the metadata kept in its annotations. `helm
upgrade` reuses the Secret it finds (lookup) when it holds all three keys, was made for the
same DNS names and has more than 90 days left; otherwise, and at install, a new CA and
certificate are generated (valid 10 years). Computed once per render and kept in the root
context, so the Secret, every caBundle and the Deployment's checksum see the same one.
Returned as JSON: {"data": {...}, "dnsNames": "a,b,c", "notAfter": RFC 3339}. */ -}}
{{- define "costgov.webhookTLS" -}}
{{- if not (hasKey $ "costgovWebhookTLS") }}
{{- $fullname := include "costgov.fullname" $ }}
{{- $service := printf "%s.%s.svc" $fullname $.Release.Namespace }}
{{- $dnsNames := list $service (printf "%s.%s" $fullname $.Release.Namespace) $fullname }}
{{- $rfc3339 := "2006-01-02T15:04:05Z07:00" }}
{{- $tls := dict }}
{{- $existing := lookup "v1" "Secret" $.Release.Namespace (printf "%s-webhook-tls" $fullname) }}
{{- if $existing }}
{{- $data := $existing.data | default dict }}
{{- $notes := $existing.metadata.annotations | default dict }}
{{- $notAfter := get $notes "costgov.io/not-after" }}
{{- $fresh := and $notAfter (lt (now | dateModify "+2160h").Unix (toDate $rfc3339 $notAfter).Unix) }}
{{- $sameNames := eq (get $notes "costgov.io/dns-names") (join "," $dnsNames) }}
{{- $complete := and (get $data "tls.crt") (get $data "tls.key") (get $data "ca.crt") }}
{{- if and $fresh $sameNames $complete }}
{{- $tls = dict "data" (pick $data "tls.crt" "tls.key" "ca.crt") "dnsNames" (join "," $dnsNames) "notAfter" $notAfter }}
{{- end }}
{{- end }}
{{- if not $tls }}
{{- $ca := genCA "costgov-webhook-ca" 3650 }}
{{- $cert := genSignedCert $service nil $dnsNames 3650 $ca }}
{{- $data := dict "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) "ca.crt" ($ca.Cert | b64enc) }}
{{- $notAfter := dateInZone $rfc3339 (now | dateModify "+87600h") "UTC" }}
{{- $tls = dict "data" $data "dnsNames" (join "," $dnsNames) "notAfter" $notAfter }}
{{- end }}
{{- $_ := set $ "costgovWebhookTLS" $tls }}
{{- end }}
{{- get $ "costgovWebhookTLS" | toJson }}
{{- end -}}
