"""Reconcile a ModelDeployment: one deployment per live version behind a weighted traffic split.

Order matters for users' traffic: every live version's deployment is applied first, then the
routes, and only then are versions that left the split deleted, so no request is ever routed to a
subset that is gone. The serving and traffic providers (Seldon and Istio by default) come from the
operator configuration.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from slipway.api.v1alpha1.common import API_VERSION
from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.backends import ServingBackend, VersionState, serving_backend, traffic_backend
from slipway.builders.meta import Owner
from slipway.builders.placement import UnknownNodePool, resolve_pool
from slipway.builders.rollout import Live, ModelVersion, Split, live_versions, static_split
from slipway.config import NodePool
from slipway.k8s import ApiError

from .base import Context, Result, describe_validation, log, write_status
from .conditions import Verdict, merge_conditions
from .modelsource import Resolved, resolve, source_field

KIND = "ModelDeployment"


def owner_of(body: dict[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(API_VERSION, KIND, meta["name"], meta["namespace"], meta["uid"])


def _recorded(entry: dict[str, Any] | None) -> ModelVersion | None:
    if not entry:
        return None
    return ModelVersion(uri=entry["modelUri"], digest=entry["modelDigest"])


def judge(split: Split, states: dict[str, VersionState]) -> Verdict:
    """Ready / Progressing / Degraded from the split and the versions' deployment states."""
    stable = states[split.stable.version]
    name = split.stable.version
    if stable.failed:
        return Verdict(
            "Degraded",
            False,
            "DeploymentFailed",
            f"version {name} failed: {stable.detail}",
            degraded=True,
        )
    if not stable.ready:
        return Verdict(
            "Progressing",
            False,
            "WaitingForDeployment",
            f"version {name}: {stable.detail}",
            progressing=True,
        )
    if split.candidate is None:
        note = " (promoted)" if split.promoted else ""
        return Verdict("Ready", True, "Available", f"version {name} serves 100%{note}")
    candidate = states[split.candidate.version]
    new = split.candidate.version
    if candidate.failed:
        return Verdict(
            "Degraded",
            True,
            "CandidateFailed",
            f"candidate {new} failed: {candidate.detail}; {name} keeps all traffic",
            degraded=True,
        )
    if split.waiting:
        return Verdict(
            "Progressing",
            True,
            "CandidateNotReady",
            f"candidate {new}: {candidate.detail}; it gets traffic once ready",
            progressing=True,
        )
    return Verdict(
        "Split",
        True,
        "StaticSplit",
        f"{name} {split.stable_weight}%, {new} {split.candidate_weight}%",
    )


def reconcile(ctx: Context, body: dict[str, Any]) -> Result:
    """Bring the children of one ModelDeployment in line with its spec; write its status."""
    owner = owner_of(body)
    try:
        spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        problem = Verdict("Degraded", False, "InvalidSpec", describe_validation(exc), degraded=True)
        return _stop(ctx, body, problem, permanent=True)
    try:
        pool = resolve_pool(spec.placement, ctx.config.node_pools)
    except UnknownNodePool as exc:
        problem = Verdict("Degraded", False, "UnknownNodePool", str(exc), degraded=True)
        return _stop(ctx, body, problem, permanent=True)
    if spec.rollout.strategy != "Static":
        problem = Verdict(
            "Degraded",
            False,
            "StrategyNotSupported",
            f"spec.rollout.strategy {spec.rollout.strategy} is not available in this release; "
            "use Static",
            degraded=True,
        )
        return _stop(ctx, body, problem, permanent=True)
    resolved = resolve(ctx, owner.namespace, spec.model)
    if isinstance(resolved, Verdict):
        # Nothing to retry: the TrainingJob or TuningSweep is watched, and its next change
        # reconciles this object again.
        return _stop(ctx, body, resolved, permanent=False)
    try:
        return _converge(ctx, body, owner, spec, pool, resolved)
    except ApiError as exc:
        if exc.retriable:
            raise
        problem = Verdict("Degraded", False, "ChildRejected", str(exc), degraded=True)
        return _stop(ctx, body, problem, permanent=True)


def _converge(
    ctx: Context,
    body: dict[str, Any],
    owner: Owner,
    spec: ModelDeploymentSpec,
    pool: NodePool | None,
    resolved: Resolved,
) -> Result:
    serving = serving_backend(ctx.config.serving)
    traffic = traffic_backend(ctx.config.traffic)
    old = body.get("status") or {}
    # A spec this reconciler has not seen yet means changes to write: skip the read-and-compare.
    settled = old.get("observedGeneration") == body["metadata"].get("generation")
    stable, candidate = _recorded(old.get("stable")), _recorded(old.get("candidate"))
    live = live_versions(stable, candidate, resolved.model)
    states = _deploy(ctx, serving, owner, spec, pool, live, settled)
    ready = live.candidate is not None and states[live.candidate.version].ready
    split = static_split(live, spec.rollout, ready)
    for manifest in traffic.render(owner, split, ctx.config):
        ctx.cluster.apply(manifest, check_first=settled)
    _prune(ctx, serving, owner, old, split)

    def version(v: ModelVersion, weight: int) -> dict[str, Any]:
        return {
            "version": v.version,
            "modelUri": v.uri,
            "modelDigest": v.digest,
            "weight": weight,
            "seldonDeployment": serving.name(owner, v),
            "ready": states[v.version].ready,
        }

    extra: dict[str, Any] = {
        "stable": version(split.stable, split.stable_weight),
        "candidate": version(split.candidate, split.candidate_weight) if split.candidate else None,
        "url": traffic.url(owner, ctx.config) or None,
        "lineage": {
            **resolved.lineage,
            "modelUri": resolved.model.uri,
            "modelDigest": resolved.model.digest,
            "liveVersion": split.stable.version,
        },
    }
    _finish(ctx, body, judge(split, states), extra)
    return Result()


def _deploy(
    ctx: Context,
    serving: ServingBackend,
    owner: Owner,
    spec: ModelDeploymentSpec,
    pool: NodePool | None,
    live: Live,
    settled: bool,
) -> dict[str, VersionState]:
    """Apply each live version's deployment and read back its state."""
    states = {}
    for version in (live.stable, live.candidate):
        if version is None:
            continue
        manifest = serving.render(owner, spec, version, pool, ctx.config)
        obj = ctx.cluster.apply(manifest, settled)[0] if manifest is not None else None
        states[version.version] = serving.observe(obj)
    return states


def _prune(
    ctx: Context, serving: ServingBackend, owner: Owner, old: dict[str, Any], split: Split
) -> None:
    """Delete the deployments of versions recorded in status that left the split."""
    keep = {split.stable.version} | ({split.candidate.version} if split.candidate else set())
    for role in ("stable", "candidate"):
        entry = old.get(role)
        if entry and entry.get("version") not in keep:
            log.info(
                "Version %s of %s/%s left the split", entry["version"], owner.namespace, owner.name
            )
            if serving.kind != "None":
                ctx.cluster.delete(
                    serving.api_version, serving.kind, owner.namespace, entry["seldonDeployment"]
                )


def _finish(ctx: Context, body: dict[str, Any], verdict: Verdict, extra: dict[str, Any]) -> None:
    old = body.get("status") or {}
    generation = body["metadata"].get("generation")
    status = {
        **extra,
        "observedGeneration": generation,
        "phase": verdict.phase,
        "conditions": merge_conditions(old.get("conditions") or [], verdict, generation),
    }
    if write_status(ctx, body, status):
        _announce(ctx, body, old, status, verdict)


def _announce(
    ctx: Context, body: dict[str, Any], old: dict[str, Any], new: dict[str, Any], verdict: Verdict
) -> None:
    """Events for transitions only: a new stable or candidate version, a new problem."""
    for role in ("stable", "candidate"):
        before = (old.get(role) or {}).get("version")
        after = (new.get(role) or {}).get("version")
        if after and after != before:
            reason = "Promoted" if role == "stable" and before else f"{role.capitalize()}Version"
            ctx.cluster.event(body, reason, f"{role} version {after} ({new[role]['modelUri']})")
    if verdict.degraded and old.get("phase") != new["phase"]:
        ctx.cluster.event(body, verdict.reason, verdict.message, warning=True)


def _stop(ctx: Context, body: dict[str, Any], verdict: Verdict, permanent: bool) -> Result:
    """Report a problem found before any child was touched (no half-created children)."""
    old = body.get("status") or {}
    _finish(ctx, body, verdict, {k: old.get(k) for k in ("stable", "candidate", "url", "lineage")})
    return Result(permanent=verdict.message if permanent else None)


# Which ModelDeployments an event on another object concerns (controller-runtime's "map" funcs).


def controller_of(child: dict[str, Any]) -> dict[str, Any] | None:
    """A reference (``metadata`` only) to the ModelDeployment controlling ``child``, or None.

    No API call: the reconcile reads the object itself, and skips it when it is gone or going.
    """
    meta = child["metadata"]
    ref = next(
        (
            r
            for r in meta.get("ownerReferences") or []
            if r.get("apiVersion") == API_VERSION and r.get("kind") == KIND and r.get("controller")
        ),
        None,
    )
    if ref is None:
        return None
    return {
        "metadata": {"namespace": meta["namespace"], "name": ref["name"], "uid": ref.get("uid")}
    }


def referring_to(ctx: Context, source: dict[str, Any]) -> list[dict[str, Any]]:
    """The ModelDeployments that take their model from ``source`` (a TrainingJob or TuningSweep)."""
    meta = source["metadata"]
    field = source_field(source["kind"])
    return [
        body
        for body in ctx.cluster.list(API_VERSION, KIND, meta["namespace"])
        if ((body.get("spec", {}).get("model") or {}).get(field) or {}).get("name") == meta["name"]
    ]
