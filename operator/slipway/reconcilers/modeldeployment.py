"""Reconcile a ModelDeployment: one deployment per live version behind a weighted traffic split.

Order matters for users' traffic: every live version's deployment is applied first, then the
routes, and only then are deployments that left the split deleted, so no request is ever routed to
a subset that is gone. Before anything is written, every child name is checked: a name held by an
object this ModelDeployment does not control stops the reconcile with ``NameConflict`` and touches
nothing. What to delete is found from the deployments that exist and that this object controls,
never from status alone. The serving and traffic providers (Seldon and Istio by default) come
from the operator configuration.

Static rollouts are decided here; Canary, ABTest and Shadow rollouts by ``rollout.py``, which
returns the split and when to reconcile again (the next check). After a promotion the previous
stable version stays deployed, with no traffic, for ``analysis.keepPrevious``: reverting
``spec.model`` to it inside that window moves all traffic back in the same reconcile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from slipway.api.v1alpha1.common import API_VERSION
from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.api.v1alpha1.rollout import Analysis
from slipway.backends import (
    ServingBackend,
    VersionState,
    analysis_backend,
    serving_backend,
    traffic_backend,
)
from slipway.builders import analysis as plan
from slipway.builders.meta import Owner
from slipway.builders.placement import PlacementError, resolve_pool
from slipway.builders.rollout import (
    DigestPrefixCollision,
    Live,
    ModelVersion,
    Split,
    live_versions,
    seconds,
    static_split,
)
from slipway.config import NodePool
from slipway.k8s import ApiError

from . import rollout as progressive
from . import rolloutstatus
from .base import (
    Children,
    Context,
    NameConflict,
    Result,
    describe_validation,
    log,
    owner_of,
    problem_changed,
    write_status,
)
from .conditions import Verdict, merge_conditions
from .modelsource import Resolved, resolve, source_field
from .recovery import live_before

KIND = "ModelDeployment"


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
    except PlacementError as exc:
        problem = Verdict("Degraded", False, exc.reason, str(exc), degraded=True)
        return _stop(ctx, body, problem, permanent=True)
    resolved = resolve(ctx, owner.namespace, spec.model)
    if isinstance(resolved, Verdict):
        # Nothing to retry: the TrainingJob or TuningSweep is watched, and its next change
        # reconciles this object again.
        return _stop(ctx, body, resolved, permanent=False)
    try:
        return _converge(ctx, body, owner, spec, pool, resolved)
    except NameConflict as exc:
        # Not permanent: the fix is deleting the other object, which sends this one no event;
        # the periodic resync (or any change) tries again, without a retry storm.
        return _stop(ctx, body, exc.verdict(), permanent=False)
    except DigestPrefixCollision as exc:
        problem = Verdict("Degraded", False, "VersionIdCollision", str(exc), degraded=True)
        return _stop(ctx, body, problem, permanent=True)
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
    now = dt.datetime.now(dt.UTC)
    generation = body["metadata"].get("generation")
    old = body.get("status") or {}
    stable, candidate = (
        rolloutstatus.recorded(old.get("stable")),
        rolloutstatus.recorded(old.get("candidate")),
    )
    if stable is None:  # never recorded, or the record was lost: ask the deployments
        stable = live_before(ctx, owner, serving)
    previous, keep_until = rolloutstatus.previous_version(old, now)
    record = rolloutstatus.record_of(old)
    desired = resolved.model
    strategy = spec.rollout.strategy
    revert_to = (
        previous
        if previous is not None and stable is not None and desired.digest == previous.digest
        else None
    )
    if revert_to is not None and stable is not None:
        live = Live(stable, revert_to)  # a candidate, unless its deployment is still ready
    else:
        live = live_versions(stable, candidate, desired)
    held_back = (
        record is not None
        and record.phase == "Failed"
        and record.generation == generation
        and live.candidate is not None
        and live.candidate.digest == record.candidate_digest
    )
    if held_back:  # rolled back, and the spec has not changed since: stay on the stable version
        live = Live(live.stable)
    kept = [v for v in (live.stable, live.candidate, previous) if v is not None]
    deployments = {v.version: serving.render(owner, spec, v, pool, ctx.config) for v in kept}
    children = Children(ctx, owner)
    # Every name this reconcile may write, checked before the first write. Route names do not
    # depend on the weights, so the routes of the unready split stand for the final ones.
    provisional = traffic.render(owner, static_split(live, spec.rollout, False), ctx.config)
    conflict = children.claim([m for m in deployments.values() if m] + provisional)
    if conflict is not None:
        return _stop(ctx, body, conflict.verdict(), permanent=False)
    states = {
        version: serving.observe(children.apply(manifest) if manifest else None)
        for version, manifest in deployments.items()
    }
    keep = seconds(spec.rollout.analysis.keep_previous) if spec.rollout.analysis else 0.0
    requeue: list[dt.datetime] = []  # when to reconcile again, though nothing changes
    notes: list[progressive.Note] = []
    step: progressive.Progress | None = None
    if revert_to is not None and states[revert_to.version].ready:
        # Back to the version promoted away from: all traffic at once, no new deployment.
        split = Split(revert_to, 100, None, 0, promoted=True)
        notes.append(progressive.Note("Reverted", f"{revert_to.version} serves 100% again"))
    elif strategy in plan.PROGRESSIVE and live.candidate is not None:
        assert live.stable is not None
        if (
            record is None
            or record.candidate_digest != live.candidate.digest
            or (record.phase in plan.DONE)
        ):
            record = plan.start(
                strategy,
                live.candidate.version,
                live.candidate.digest,
                live.stable.version,
                spec.rollout.analysis or Analysis(),
                now,
            )
        run = progressive.RolloutRun(
            owner,
            spec,
            live,
            states[live.candidate.version],
            analysis_backend(ctx.config),
            now,
            generation,
        )
        step = progressive.progress(run, record)
        split, record, notes = step.split, step.state, step.notes
        if step.due is not None:
            requeue.append(step.due)
    else:
        if record is not None and record.phase in (*plan.ACTIVE, "Waiting"):
            record = None  # the strategy changed to Static mid-rollout
        ready = live.candidate is not None and states[live.candidate.version].ready
        split = static_split(live, spec.rollout, ready)
    if split.promoted and split.stable.digest != live.stable.digest and keep > 0:
        previous, keep_until = live.stable, plan.timestamp(now + dt.timedelta(seconds=keep))
    elif previous is not None and previous.digest in {split.stable.digest} | (
        {split.candidate.digest} if split.candidate else set()
    ):
        previous, keep_until = None, None
    until = plan.parse_time(keep_until)
    if until is not None:
        requeue.append(until)
    split = replace(split, previous=previous)
    for manifest in traffic.render(owner, split, ctx.config):
        children.apply(manifest)
    _prune(children, serving, owner, split)

    def version(v: ModelVersion, weight: int) -> dict[str, Any]:
        return {
            "version": v.version,
            "modelUri": v.uri,
            "modelDigest": v.digest,
            "weight": weight,
            "seldonDeployment": serving.name(owner, v),
            "ready": states[v.version].ready,
            "lineage": dict(v.lineage) or None,
        }

    extra: dict[str, Any] = {
        "stable": version(split.stable, split.stable_weight),
        "candidate": version(split.candidate, split.candidate_weight) if split.candidate else None,
        "previous": {**version(previous, 0), "keepUntil": keep_until} if previous else None,
        "rollout": record.to_api() if record is not None else None,
        "url": traffic.url(owner, ctx.config) or None,
        "lineage": {
            **resolved.lineage,
            "modelUri": resolved.model.uri,
            "modelDigest": resolved.model.digest,
            "liveVersion": split.stable.version,
        },
    }
    verdict = judge(split, states)
    stable_ok = states[split.stable.version].ready and not states[split.stable.version].failed
    rolled_back = record is not None and record.phase == "Failed"
    if (
        record is not None
        and stable_ok
        and (
            split.candidate is not None
            or (rolled_back and record.candidate_digest == desired.digest)
        )
    ):
        verdict = rolloutstatus.verdict(record, split.stable)
    _finish(ctx, body, verdict, extra, notes, step)
    if not requeue:
        return Result()
    # From the time of this return, not of the reconcile's start: a check that took a while
    # must not push the next one back by as much.
    return Result(requeue_after=max(0.0, (min(requeue) - dt.datetime.now(dt.UTC)).total_seconds()))


def _prune(children: Children, serving: ServingBackend, owner: Owner, split: Split) -> None:
    """Delete the deployments this object controls that serve no live version any more."""
    if serving.kind == "None":
        return
    keep = {serving.name(owner, v) for v in split.versions}
    for name in children.prune(serving.api_version, serving.kind, keep):
        log.info("%s %s/%s left the split", serving.kind, owner.namespace, name)


def _finish(
    ctx: Context,
    body: dict[str, Any],
    verdict: Verdict,
    extra: dict[str, Any],
    notes: list[progressive.Note] | None = None,
    step: progressive.Progress | None = None,
) -> None:
    old = body.get("status") or {}
    generation = body["metadata"].get("generation")
    conditions = merge_conditions(old.get("conditions") or [], verdict, generation)
    status = {
        **extra,
        "observedGeneration": generation,
        "phase": verdict.phase,
        "conditions": rolloutstatus.with_rolled_back(conditions, extra.get("rollout"), generation),
    }
    if write_status(ctx, body, status):
        _announce(ctx, body, old, status, verdict)
        for note in notes or []:
            ctx.cluster.event(body, note.reason, note.message, warning=note.warning)
        if step is not None:
            rolloutstatus.count(step)


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
    if verdict.degraded and problem_changed(old, new):
        ctx.cluster.event(body, verdict.reason, verdict.message, warning=True)


def _stop(ctx: Context, body: dict[str, Any], verdict: Verdict, permanent: bool) -> Result:
    """Report a problem found before any child was touched (no half-created children)."""
    old = body.get("status") or {}
    kept = ("stable", "candidate", "previous", "rollout", "url", "lineage")
    _finish(ctx, body, verdict, {k: old.get(k) for k in kept})
    return Result(permanent=verdict.message if permanent else None)


# Which ModelDeployments an event on another object concerns (controller-runtime's "map" funcs).


def referring_to(ctx: Context, source: dict[str, Any]) -> list[dict[str, Any]]:
    """The ModelDeployments that take their model from ``source`` (a TrainingJob or TuningSweep)."""
    meta = source["metadata"]
    field = source_field(source["kind"])
    return [
        body
        for body in ctx.cluster.list(API_VERSION, KIND, meta["namespace"])
        if ((body.get("spec", {}).get("model") or {}).get(field) or {}).get("name") == meta["name"]
    ]
