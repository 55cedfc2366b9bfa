"""REST paths of the kinds Slipway reads and writes, and the API verbs it uses on each.

A fixed table instead of discovery: the operator touches a handful of kinds, all known in advance,
and a table costs no start-up round trips.

The table is also the operator's permissions, declared once. A row's ``verbs`` (and
``status_verbs`` for its status subresource) are every verb the operator uses on that kind: its
own calls and kopf's. kopf lists and watches each kind it handles, merge-patches its bookkeeping
annotations onto the objects it reconciles and keep-alives into the peering record. ``owner``
marks a kind whose children's owner references block its deletion (update on its finalizers), and
``modes`` says whether a cluster-wide operator, a namespaced one, or both use the kind. The
operator's client refuses any call the table does not declare (``require``), and
``tests/unit/test_chart_rules.py`` checks that the Helm chart grants exactly ``rbac_rules()`` in
each of its modes: nothing the code never uses, nothing missing.

Adding a kind is one line here and one in the chart's ``templates/_rules.tpl``. A child that a
reconciler applies, watches and prunes, for instance, is this row::

    Resource("trainer.kubeflow.org/v1alpha1", "TrainJob", "trainjobs", verbs=CHILD + PRUNED),

and this rule (CHILD + PRUNED spelled out)::

    - {apiGroups: [trainer.kubeflow.org], resources: [trainjobs], verbs: [get, create, patch,
       list, watch, delete]}

A Slipway kind whose reconciler starts writing its status takes ``status_verbs=PATCHED`` on its
``_own(...)`` line (and ``owner=True`` once it owns children), and one line in the chart.
"""

from __future__ import annotations

from dataclasses import dataclass

from slipway.api.v1alpha1 import DATASET, MODEL_DEPLOYMENT, TRAINING_JOB, TUNING_SWEEP, Kind

CLUSTER_WIDE = "cluster-wide"  # the operator watches every namespace
NAMESPACED = "namespaced"  # the operator watches one namespace
BOTH = (CLUSTER_WIDE, NAMESPACED)

# Verb sets, named after what the operator does with them.
WATCHED = ("list", "watch")  # kopf: the initial listing, then the watch
READ = ("get",)  # a single object read by name
APPLIED = ("get", "create", "patch")  # read, then server-side apply (which creates when absent)
CHILD = APPLIED + WATCHED  # a child: applied and watched for drift or a reported state
PRUNED = ("delete",)  # a child the reconciler deletes when it leaves the desired state
PATCHED = ("patch",)
PEERING = ("get", "list", "watch", "patch")  # kopf's keep-alives; the resync reads the record
APPLY_PATCH = "application/apply-patch+yaml"


class Undeclared(PermissionError):
    """An API call the operator's table does not declare: add it to the table (and the chart)."""


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the REST API, and what the operator may do to it."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True
    verbs: tuple[str, ...] = ()
    status_verbs: tuple[str, ...] = ()
    # Children's owner references block this kind's deletion (``blockOwnerDeletion``), which
    # clusters enforcing OwnerReferencesPermissionEnforcement allow only with update on finalizers.
    owner: bool = False
    modes: tuple[str, ...] = BOTH

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def grants(self) -> dict[str, tuple[str, ...]]:
        """RBAC resource name -> verbs: the kind itself and its subresources."""
        found = {
            self.plural: self.verbs,
            f"{self.plural}/status": self.status_verbs,
            f"{self.plural}/finalizers": ("update",) if self.owner else (),
        }
        return {name: verbs for name, verbs in found.items() if verbs}

    def path(
        self, namespace: str | None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The REST path; a namespaced kind with no ``namespace`` gives the all-namespaces path."""
        prefix = "/api/" if "/" not in self.api_version else "/apis/"
        scope = f"namespaces/{namespace}/" if self.namespaced and namespace is not None else ""
        path = f"{prefix}{self.api_version}/{scope}{self.plural}"
        if name is not None:
            path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
        return path


def _own(
    kind: Kind, verbs: tuple[str, ...] = (), status_verbs: tuple[str, ...] = (), owner: bool = False
) -> Resource:
    """The row of one of Slipway's own kinds (its names come from its KindInfo)."""
    info = kind.info
    api_version = f"{info.group}/{info.version}"
    return Resource(api_version, info.kind, info.plural, True, verbs, status_verbs, owner)


SELDON = "machinelearning.seldon.io/v1"
_TABLE = [
    Resource("v1", "Service", "services", verbs=CHILD),
    Resource("v1", "Event", "events", verbs=("create",)),  # ours; kopf posts none (level 100)
    # A namespaced kopf lists and watches namespaces to find the ones it serves; denied, it retries
    # with errors for a minute before it assumes the configured one exists. Cluster-wide: unused.
    Resource("v1", "Namespace", "namespaces", False, WATCHED, modes=(NAMESPACED,)),
    Resource(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        verbs=WATCHED,  # kopf notices CRDs installed or removed while it runs
    ),
    Resource(
        "kopf.dev/v1",
        "ClusterKopfPeering",
        "clusterkopfpeerings",
        namespaced=False,
        verbs=PEERING,
        modes=(CLUSTER_WIDE,),
    ),
    Resource("kopf.dev/v1", "KopfPeering", "kopfpeerings", verbs=PEERING, modes=(NAMESPACED,)),
    Resource(SELDON, "SeldonDeployment", "seldondeployments", verbs=CHILD + PRUNED),
    Resource("networking.istio.io/v1", "VirtualService", "virtualservices", verbs=CHILD),
    Resource("networking.istio.io/v1", "DestinationRule", "destinationrules", verbs=CHILD),
    # TuningSweeps' Katib Experiments (children), and their Trials (read for the best trials).
    Resource("kubeflow.org/v1beta1", "Experiment", "experiments", verbs=CHILD + PRUNED),
    Resource("kubeflow.org/v1beta1", "Trial", "trials", verbs=("list",)),
    # Distributed training children of TrainingJobs (the configured provider's kind).
    Resource("kubeflow.org/v1", "PyTorchJob", "pytorchjobs", verbs=CHILD + PRUNED),
    Resource("trainer.kubeflow.org/v1alpha1", "TrainJob", "trainjobs", verbs=CHILD + PRUNED),
    Resource(
        "trainer.kubeflow.org/v1alpha1",
        "ClusterTrainingRuntime",
        "clustertrainingruntimes",
        namespaced=False,
    ),
    _own(MODEL_DEPLOYMENT, WATCHED + READ + PATCHED, status_verbs=PATCHED, owner=True),
    # Reconciled: watched, read, annotated by kopf, finalizer patched while a run is in flight.
    _own(TRAINING_JOB, WATCHED + READ + PATCHED, status_verbs=PATCHED, owner=True),
    # Reconciled like TrainingJobs; also a model source. Its Experiments block its deletion.
    _own(TUNING_SWEEP, WATCHED + READ + PATCHED, status_verbs=PATCHED, owner=True),
    _own(DATASET, WATCHED + READ + PATCHED, status_verbs=PATCHED),
]
RESOURCES = {(r.api_version, r.kind): r for r in _TABLE}


def resource(api_version: str, kind: str) -> Resource:
    try:
        return RESOURCES[(api_version, kind)]
    except KeyError:
        raise KeyError(f"Slipway does not manage {kind} in {api_version}") from None


def rbac_rules(mode: str) -> dict[str, set[tuple[str, str, str]]]:
    """What the chart must grant in ``mode``: role kind -> {(apiGroup, resource, verb)}.

    Cluster-wide, everything is in the ClusterRole. Namespaced, the namespaced kinds are granted
    by a Role in the watched namespace and only cluster-scoped kinds stay in the ClusterRole.
    """
    rules: dict[str, set[tuple[str, str, str]]] = {"ClusterRole": set(), "Role": set()}
    for res in _TABLE:
        if mode not in res.modes:
            continue
        role = "Role" if mode == NAMESPACED and res.namespaced else "ClusterRole"
        for name, verbs in res.grants().items():
            rules[role].update((res.group, name, verb) for verb in verbs)
    return rules


_BY_PLURAL = {(r.api_version, r.plural): r for r in _TABLE}


def _parse(path: str) -> tuple[Resource, str | None, str | None]:
    """The resource, object name and subresource a REST path addresses."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        api_version, rest = parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        raise Undeclared(f"{path} is not a resource path")
    if len(rest) >= 3 and rest[0] == "namespaces" and (api_version, rest[2]) in _BY_PLURAL:
        rest = rest[2:]  # namespaces/<ns>/<plural>/...
    found = _BY_PLURAL.get((api_version, rest[0]))
    if found is None or len(rest) > 3:
        raise Undeclared(f"{path} addresses nothing in Slipway's resource table")
    return found, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None


def require(method: str, path: str, content_type: str | None = None) -> None:
    """Raise ``Undeclared`` unless the table declares every verb this call needs.

    GET by name is get, GET without a name is list, POST is create, PATCH is patch (a server-side
    apply may create the object, so it needs create as well, as the API server's authorizer
    requires), PUT is update, DELETE by name is delete.
    """
    res, name, subresource = _parse(path)
    needed = {
        "GET": ("get",) if name else ("list",),
        "POST": ("create",),
        "PATCH": ("patch", "create") if content_type == APPLY_PATCH else ("patch",),
        "PUT": ("update",),
        "DELETE": ("delete",) if name else ("deletecollection",),
    }.get(method.upper(), (method.lower(),))
    rbac_name = res.plural if subresource is None else f"{res.plural}/{subresource}"
    declared = res.grants().get(rbac_name, ())
    missing = [verb for verb in needed if verb not in declared]
    if missing:
        raise Undeclared(
            f"{method} {path} needs {'+'.join(missing)} on {rbac_name} ({res.kind}), which "
            "slipway.k8s.resources does not declare: add the verb to its row there and to the "
            "Helm chart's rules"
        )
