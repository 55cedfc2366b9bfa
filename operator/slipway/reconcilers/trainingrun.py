"""Start or find a TrainingJob's run, and read its state: the only place that drives providers.

``follow`` is idempotent: the run is found by the id recorded in status, else by its deterministic
name, and started only when neither finds it (a KFP server or the local store that forgot a run
it was given is reported, never silently replaced). A run outside Kubernetes is started only after
the cancel-run finalizer is on the object. A distributed job that is a Kubernetes object is
applied as a child every pass (a no-op once it matches), so a deleted or edited child is put back.
The run's record, as ``status.run`` holds it, is a plain dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slipway.api.v1alpha1.trainingjob import TrainingJobSpec
from slipway.backends import RunStatus, TrainingRequest, pipelines_backend, training_backend
from slipway.backends.pipelines import FAILED
from slipway.backends.training import PENDING, TrainingState
from slipway.builders.meta import Owner
from slipway.config import NodePool

from .base import Children, Context, log
from .runs import hold, plain
from .trainingplan import DatasetVersion, distributed, pipeline_run, training_request


@dataclass(frozen=True)
class Attempt:
    """One generation's run: everything needed to start it or find it again."""

    owner: Owner
    generation: int
    spec: TrainingJobSpec
    pool: NodePool | None
    data: DatasetVersion
    name: str


def follow(
    ctx: Context, body: dict[str, Any], attempt: Attempt, recorded: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's record after starting it if needed; also the object (patched if held)."""
    if distributed(attempt.spec):
        return _distributed(ctx, body, attempt, recorded)
    return _pipeline(ctx, body, attempt, recorded)


def _record(attempt: Attempt, provider: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": attempt.name,
        "provider": provider,
        "generation": attempt.generation,
        "datasetUri": attempt.data.uri,
        **fields,
    }


def _pipeline(
    ctx: Context, body: dict[str, Any], attempt: Attempt, recorded: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    provider = ctx.config.pipelines
    backend = pipelines_backend(provider, ctx.config)
    run = pipeline_run(attempt.owner, attempt.name, attempt.spec, attempt.data, attempt.pool)
    found: RunStatus | None = backend.status(recorded["id"]) if recorded.get("id") else None
    if found is None:
        found = backend.find(run)
    if found is None and recorded:
        lost = (
            f"the pipelines system no longer knows run {attempt.name}; change the spec to retrain"
        )
        return body, _record(attempt, f"pipelines/{provider}", state=FAILED, message=lost)
    if found is None and provider == "none":
        found = backend.start(run)  # SKIPPED, with the reason: reported, never held
    elif found is None:
        body = hold(ctx, body)
        found = backend.start(run)
        ctx.cluster.event(body, "RunStarted", f"pipeline run {run.name} ({provider})")
    record = _record(
        attempt,
        f"pipelines/{provider}",
        id=found.run_id or None,
        state=found.state,
        message=plain(found.message),
        created=found.created,
        finished=found.finished,
    )
    return body, record


def _distributed(
    ctx: Context, body: dict[str, Any], attempt: Attempt, recorded: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    provider = ctx.config.training
    backend = training_backend(provider, ctx.config)
    request = training_request(
        attempt.owner,
        attempt.name,
        attempt.spec,
        attempt.data,
        attempt.pool,
        in_pods=backend.kind != "None",
    )
    manifest = backend.render(attempt.owner, request)
    state: TrainingState
    if manifest is not None:
        live, created, pruned = Children(ctx, attempt.owner).apply_only(manifest)
        if created:
            ctx.cluster.event(body, "RunStarted", f"{backend.kind} {request.name} created")
        for name in pruned:
            log.info(
                "%s %s/%s belongs to an older generation", backend.kind, request.namespace, name
            )
        state = backend.observe(request, live)
    else:
        state = backend.observe(request, None)
        if state.phase == PENDING and provider == "local":
            body = hold(ctx, body)
            backend.start(request)  # idempotent by name: a run that exists is left alone
            if not recorded:
                ctx.cluster.event(body, "RunStarted", f"local run {request.name}")
            state = backend.observe(request, None)
    record = _record(
        attempt,
        f"training/{provider}",
        id=request.name,
        state=state.phase,
        message=plain(state.message),
        created=state.started,
        finished=state.finished,
    )
    return body, record


def cancel_recorded(ctx: Context, namespace: str, recorded: dict[str, Any]) -> None:
    """Cancel a recorded run that may still be in flight (a no-op for Kubernetes children, which
    are pruned, and for runs that already ended)."""
    concern, _, provider = str(recorded.get("provider") or "").partition("/")
    if concern == "pipelines" and recorded.get("id"):
        pipelines_backend(provider, ctx.config).cancel(str(recorded["id"]))
    elif concern == "training" and provider:
        request = TrainingRequest(str(recorded.get("name")), namespace, "", [])
        training_backend(provider, ctx.config).cancel(request)
