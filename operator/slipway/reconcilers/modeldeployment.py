"""Reconcile a ModelDeployment: Seldon deployments per version behind an Istio traffic split.

Order matters for users' traffic: the Service and every live version's SeldonDeployment are
applied first, then the routes, and only then are versions that left the split deleted, so no
request is ever routed to a subset that is gone.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from slipway.api.v1alpha1.common import API_VERSION
from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.builders import modeldeployment as build
from slipway.builders.meta import Owner
from slipway.builders.placement import UnknownNodePool, resolve_pool
from slipway.builders.rollout import Live, ModelVersion, Split, live_versions, static_split
from slipway.config import NodePool
from slipway.k8s import ApiError

from .base import Context, Result, describe_validation, log, write_status
from .conditions import Verdict, merge_conditions
from .modelsource import Resolved, resolve

KIND = "ModelDeployment"
SELDON_AVAILABLE = "Available"
SELDON_FAILED = "Failed"
WAIT_FOR_MODEL_SECONDS = 30.0


def owner_of(body: dict[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(API_VERSION, KIND, meta["name"], meta["namespace"], meta["uid"])


def _recorded(entry: dict[str, Any] | None) -> ModelVersion | None:
    if not entry:
        return None
    return ModelVersion(uri=entry["modelUri"], digest=entry["modelDigest"])


def _seldon_state(obj: dict[str, Any]) -> tuple[str, str]:
    status = obj.get("status") or {}
    return str(status.get("state") or "Creating"), str(status.get("description") or "")


def _version_status(owner: Owner, version: ModelVersion, weight: int, state: str) -> dict[str, Any]:
    return {
        "version": version.version,
        "modelUri": version.uri,
        "modelDigest": version.digest,
        "weight": weight,
        "seldonDeployment": build.seldon_name(owner, version),
        "ready": state == SELDON_AVAILABLE,
    }


def judge(split: Split, states: dict[str, tuple[str, str]]) -> Verdict:
    """Ready / Progressing / Degraded from the split and the SeldonDeployments' states."""
    stable_state, stable_why = states[split.stable.version]
    if stable_state == SELDON_FAILED:
        return Verdict(
            "Degraded",
            False,
            "SeldonDeploymentFailed",
            f"version {split.stable.version} failed: {stable_why}",
            degraded=True,
        )
    if stable_state != SELDON_AVAILABLE:
        return Verdict(
            "Progressing",
            False,
            "WaitingForSeldon",
            f"version {split.stable.version} is {stable_state}",
            progressing=True,
        )
    if split.candidate is None:
        note = " (promoted)" if split.promoted else ""
        return Verdict(
            "Ready", True, "Available", f"version {split.stable.version} serves 100%{note}"
        )
    cand_state, cand_why = states[split.candidate.version]
    if cand_state == SELDON_FAILED:
        return Verdict(
            "Degraded",
            True,
            "CandidateFailed",
            f"candidate {split.candidate.version} failed: {cand_why}; "
            f"{split.stable.version} keeps all traffic",
            degraded=True,
        )
    if split.waiting:
        return Verdict(
            "Progressing",
            True,
            "CandidateNotReady",
            f"candidate {split.candidate.version} is {cand_state}; it gets traffic once ready",
            progressing=True,
        )
    return Verdict(
        "Split",
        True,
        "StaticSplit",
        f"{split.stable.version} {split.stable_weight}%, "
        f"{split.candidate.version} {split.candidate_weight}%",
    )


def _finish(
    ctx: Context,
    body: dict[str, Any],
    verdict: Verdict,
    extra: dict[str, Any],
) -> None:
    old = body.get("status") or {}
    status = {
        **extra,
        "observedGeneration": body["metadata"].get("generation"),
        "phase": verdict.phase,
        "conditions": merge_conditions(
            old.get("conditions") or [], verdict, body["metadata"].get("generation")
        ),
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
    keep = {k: old.get(k) for k in ("stable", "candidate", "url", "lineage")}
    _finish(ctx, body, verdict, keep)
    if permanent:
        return Result(permanent=verdict.message)
    return Result(requeue_after=WAIT_FOR_MODEL_SECONDS)


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
    old = body.get("status") or {}
    live = live_versions(
        _recorded(old.get("stable")), _recorded(old.get("candidate")), resolved.model
    )
    states = _apply_versions(ctx, owner, spec, pool, live)
    candidate_ready = live.candidate is not None and (
        states[live.candidate.version][0] == SELDON_AVAILABLE
    )
    split = static_split(live, spec.rollout, candidate_ready)
    ctx.cluster.apply(build.build_destination_rule(owner, split, ctx.config))
    ctx.cluster.apply(build.build_virtual_service(owner, split, ctx.config))
    _prune(ctx, owner, old, split)

    verdict = judge(split, states)
    extra: dict[str, Any] = {
        "stable": _version_status(
            owner, split.stable, split.stable_weight, states[split.stable.version][0]
        ),
        "candidate": None
        if split.candidate is None
        else _version_status(
            owner, split.candidate, split.candidate_weight, states[split.candidate.version][0]
        ),
        "url": f"http://{build.service_host(owner, ctx.config)}:{ctx.config.model_server_port}"
        f"/v2/models/{build.app_label(owner)}",
        "lineage": _lineage(resolved, split),
    }
    _finish(ctx, body, verdict, extra)
    return Result()


def _apply_versions(
    ctx: Context, owner: Owner, spec: ModelDeploymentSpec, pool: NodePool | None, live: Live
) -> dict[str, tuple[str, str]]:
    ctx.cluster.apply(build.build_service(owner, ctx.config))
    states = {}
    for version in (live.stable, live.candidate):
        if version is None:
            continue
        manifest = build.build_seldon_deployment(owner, spec, version, pool, ctx.config)
        obj, _ = ctx.cluster.apply(manifest)
        states[version.version] = _seldon_state(obj)
    return states


def _prune(ctx: Context, owner: Owner, old: dict[str, Any], split: Split) -> None:
    """Delete the SeldonDeployments of versions recorded in status that left the split."""
    keep = {split.stable.version} | ({split.candidate.version} if split.candidate else set())
    for role in ("stable", "candidate"):
        entry = old.get(role)
        if entry and entry.get("version") not in keep:
            log.info(
                "Version %s of %s/%s left the split", entry["version"], owner.namespace, owner.name
            )
            ctx.cluster.delete(
                build.SELDON_API, "SeldonDeployment", owner.namespace, entry["seldonDeployment"]
            )


def _lineage(resolved: Resolved, split: Split) -> dict[str, Any]:
    return {
        **resolved.lineage,
        "modelUri": resolved.model.uri,
        "modelDigest": resolved.model.digest,
        "liveVersion": split.stable.version,
    }
