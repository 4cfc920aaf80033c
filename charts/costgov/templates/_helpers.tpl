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
of the <fullname>-webhook-tls Secret plus the metadata kept in its annotations (Helm
templates cannot read a certificate). Computed once per render and kept in the root
context, so the Secret, every caBundle and the Deployment's checksum see the same one.

- Reuse: `helm upgrade` keeps the Secret it finds (lookup) as it is when it holds tls.crt,
  tls.key and ca.crt, was made for the same DNS names and its serving certificate has more
  than 90 days left (costgov.io/not-after).
- Renewal, CA kept: otherwise, when the Secret holds the CA's key (ca.key) and the CA has
  more than a year left (costgov.io/ca-not-after), only a new serving certificate is signed
  by that CA: the caBundle (the CA alone) does not change, so the old pods' certificate
  stays trusted while they roll.
- Renewal, new CA (10 years): at install, from a Secret without ca.key (an older chart), a
  CA due within a year, or a Secret whose CA does not look like PEM. The caBundle is then
  the previous CA (the Secret's ca.crt; with no Secret, that of a cert-manager Secret left
  by webhook.certManager.enabled) followed by the new one, so the old pods (old CA) and the
  new ones (new CA) are both trusted during the roll. It is kept as published
  (ca-bundle.crt) until the serving certificate is next renewed, which drops the old CA.

ca.crt is always the CA that signed tls.crt. The serving certificate never outlives its
CA (10 years, or what the CA has left). Returned as JSON: {"data": {...}, "dnsNames":
"a,b,c", "notAfter": RFC 3339, "caNotAfter": RFC 3339 or ""}. */ -}}
{{- define "costgov.webhookTLS" -}}
{{- if not (hasKey $ "costgovWebhookTLS") }}
{{- $fullname := include "costgov.fullname" $ }}
{{- $service := printf "%s.%s.svc" $fullname $.Release.Namespace }}
{{- $dnsList := list $service (printf "%s.%s" $fullname $.Release.Namespace) $fullname }}
{{- $dnsNames := join "," $dnsList }}
{{- $rfc3339 := "2006-01-02T15:04:05Z07:00" }}
{{- $certPEM := "^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\r?\n?$" }}
{{- $keyPEM := "^-----BEGIN RSA PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END RSA PRIVATE KEY-----\r?\n?$" }}
{{- $tls := dict }}
{{- $existing := lookup "v1" "Secret" $.Release.Namespace (printf "%s-webhook-tls" $fullname) | default dict }}
{{- $data := get $existing "data" | default dict }}
{{- $notes := get (get $existing "metadata" | default dict) "annotations" | default dict }}
{{- $notAfter := get $notes "costgov.io/not-after" }}
{{- $caNotAfter := get $notes "costgov.io/ca-not-after" }}
{{- if $existing }}
{{- $fresh := and $notAfter (lt (now | dateModify "+2160h").Unix (toDate $rfc3339 $notAfter).Unix) }}
{{- $sameNames := eq (get $notes "costgov.io/dns-names") $dnsNames }}
{{- $complete := and (get $data "tls.crt") (get $data "tls.key") (get $data "ca.crt") }}
{{- if and $fresh $sameNames $complete }}
{{- $kept := pick $data "tls.crt" "tls.key" "ca.crt" "ca.key" "ca-bundle.crt" }}
{{- $tls = dict "data" $kept "dnsNames" $dnsNames "notAfter" $notAfter "caNotAfter" $caNotAfter }}
{{- end }}
{{- end }}
{{- if not $tls }}
{{- $oldCA := b64dec (get $data "ca.crt" | default "") }}
{{- $oldKey := b64dec (get $data "ca.key" | default "") }}
{{- $caLasts := and $caNotAfter (lt (now | dateModify "+8760h").Unix (toDate $rfc3339 $caNotAfter).Unix) }}
{{- $ca := dict }}
{{- $bundle := "" }}
{{- if and $caLasts (regexMatch $certPEM $oldCA) (regexMatch $keyPEM $oldKey) }}
{{- $ca = buildCustomCert (get $data "ca.crt") (get $data "ca.key") }}
{{- $bundle = $ca.Cert }}
{{- else }}
{{- if not $existing }}
{{- $left := lookup "v1" "Secret" $.Release.Namespace (printf "%s-webhook-cm-tls" $fullname) | default dict }}
{{- $oldCA = b64dec (get (get $left "data" | default dict) "ca.crt" | default "") }}
{{- end }}
{{- $ca = genCA "costgov-webhook-ca" 3650 }}
{{- $caNotAfter = dateInZone $rfc3339 (now | dateModify "+87600h") "UTC" }}
{{- $bundle = $ca.Cert }}
{{- if regexMatch $certPEM $oldCA }}
{{- $bundle = printf "%s\n%s" (trim $oldCA) $ca.Cert }}
{{- end }}
{{- end }}
{{- /* a minute short of the CA's end: ca-not-after is kept to the second, the CA's own end
has a fraction more, and `now` moves on between here and genSignedCert */}}
{{- $days := min 3650 (div (sub (sub (toDate $rfc3339 $caNotAfter).Unix (now).Unix) 60) 86400) }}
{{- $cert := genSignedCert $service nil $dnsList (int $days) $ca }}
{{- $data := dict "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) "ca.crt" ($ca.Cert | b64enc) "ca.key" ($ca.Key | b64enc) "ca-bundle.crt" ($bundle | b64enc) }}
{{- $notAfter := dateInZone $rfc3339 (now | dateModify (printf "+%dh" (mul $days 24))) "UTC" }}
{{- $tls = dict "data" $data "dnsNames" $dnsNames "notAfter" $notAfter "caNotAfter" $caNotAfter }}
{{- end }}
{{- $_ := set $ "costgovWebhookTLS" $tls }}
{{- end }}
{{- get $ "costgovWebhookTLS" | toJson }}
{{- end -}}
