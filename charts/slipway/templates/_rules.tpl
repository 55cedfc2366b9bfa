{{/*
RBAC rules: exactly the kinds and verbs the operator uses, no wildcards. The operator declares
them once, in its resource table (slipway.k8s.resources, which refuses any call it does not
declare); tests/unit/test_chart_rules.py fails when these rules and that table differ, in either
mode. One line per kind and subresource: adding a kind to the table adds one line here.
*/}}

{{/* Namespaced kinds: in a Role in the watched namespace, or in the ClusterRole cluster-wide. */}}
{{- define "slipway.rules.namespaced" -}}
# ModelDeployments: watched, read, annotated by kopf (its bookkeeping), status written; the
# owner references of their children block their deletion (update on finalizers).
- {apiGroups: [slipway.dev], resources: [modeldeployments], verbs: [get, list, watch, patch]}
- {apiGroups: [slipway.dev], resources: [modeldeployments/status], verbs: [patch]}
- {apiGroups: [slipway.dev], resources: [modeldeployments/finalizers], verbs: [update]}
# Datasets and TrainingJobs: watched, read, annotated by kopf, a finalizer patched while a run is
# in flight, status written; a TrainingJob's distributed job (a child) blocks its deletion.
- {apiGroups: [slipway.dev], resources: [datasets], verbs: [get, list, watch, patch]}
- {apiGroups: [slipway.dev], resources: [datasets/status], verbs: [patch]}
- {apiGroups: [slipway.dev], resources: [trainingjobs], verbs: [get, list, watch, patch]}
- {apiGroups: [slipway.dev], resources: [trainingjobs/status], verbs: [patch]}
- {apiGroups: [slipway.dev], resources: [trainingjobs/finalizers], verbs: [update]}
# TuningSweeps: watched, read, annotated by kopf, a finalizer patched while a local study runs,
# status written; their Katib Experiments (children) block their deletion.
- {apiGroups: [slipway.dev], resources: [tuningsweeps], verbs: [get, list, watch, patch]}
- {apiGroups: [slipway.dev], resources: [tuningsweeps/status], verbs: [patch]}
- {apiGroups: [slipway.dev], resources: [tuningsweeps/finalizers], verbs: [update]}
# Children: read, server-side applied (which creates them), watched; deployments also pruned.
- {apiGroups: [machinelearning.seldon.io], resources: [seldondeployments], verbs: [get, create, patch, list, watch, delete]}
- {apiGroups: [networking.istio.io], resources: [virtualservices], verbs: [get, create, patch, list, watch]}
- {apiGroups: [networking.istio.io], resources: [destinationrules], verbs: [get, create, patch, list, watch]}
- {apiGroups: [""], resources: [services], verbs: [get, create, patch, list, watch]}
- {apiGroups: [trainer.kubeflow.org], resources: [trainjobs], verbs: [get, create, patch, list, watch, delete]}
- {apiGroups: [kubeflow.org], resources: [pytorchjobs], verbs: [get, create, patch, list, watch, delete]}
- {apiGroups: [kubeflow.org], resources: [experiments], verbs: [get, create, patch, list, watch, delete]}
# Katib's Trials of those Experiments: listed for the best-trials table.
- {apiGroups: [kubeflow.org], resources: [trials], verbs: [list]}
# Events on Slipway's objects.
- {apiGroups: [""], resources: [events], verbs: [create]}
{{- end -}}

{{/* Cluster-scoped, in every mode: kopf notices CRDs installed or removed while it runs. */}}
{{- define "slipway.rules.clusterScoped" -}}
- {apiGroups: [apiextensions.k8s.io], resources: [customresourcedefinitions], verbs: [list, watch]}
{{- end -}}

{{/* Cluster-wide operators only. Peering: kopf's keep-alives, read by the resync loop. */}}
{{- define "slipway.rules.clusterWide" -}}
- {apiGroups: [kopf.dev], resources: [clusterkopfpeerings], verbs: [get, list, watch, patch]}
{{- end -}}

{{/* Namespaced operators only: peering in the watched namespace (in its Role). */}}
{{- define "slipway.rules.oneNamespace" -}}
- {apiGroups: [kopf.dev], resources: [kopfpeerings], verbs: [get, list, watch, patch]}
{{- end -}}

{{/* Namespaced operators only, cluster-scoped: kopf lists and watches namespaces to find the one
it serves (denied, it retries with errors for a minute, then assumes it exists). */}}
{{- define "slipway.rules.oneNamespaceClusterScoped" -}}
- {apiGroups: [""], resources: [namespaces], verbs: [list, watch]}
{{- end -}}
