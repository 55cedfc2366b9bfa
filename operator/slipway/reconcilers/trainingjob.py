"""Reconcile a TrainingJob: one run per generation, its model published once it passes the gate.

Order of operations, per generation (``trainingplan`` says what each step is made of):

1. The spec and the placement are checked before anything runs (``InvalidSpec``, the node pool's
   reasons). A run of an older generation still in flight is cancelled (the spec moved on).
2. A generation whose run has ended is settled: nothing is read or written again, so deleting the
   Dataset later, or another restart, changes nothing.
3. Before the first run of a generation: the dataset version is resolved (waiting on a missing or
   ingesting Dataset is a condition, and the Dataset's changes reconcile this object again), the
   fingerprint is computed, and a Succeeded TrainingJob of the namespace with the same fingerprint
   gives its model at once (``status.reusedFrom``), unless ``spec.reuse`` is Never.
4. The run: the pipeline (one worker, no GPUs) or the distributed provider. Its name is
   deterministic (uid + generation) and is looked up before anything starts, so a restarted
   operator never starts a second run. A run outside Kubernetes (a KFP run, local processes) is
   preceded by the cancel-run finalizer (``runs.hold``), removed when it ends; a distributed job
   that is a Kubernetes object is a child (applied with ``Children``, never adopted, older
   generations' children pruned) and goes with its owner, so it needs no finalizer.
5. When the run ends: FAILED and CANCELED are terminal. SUCCEEDED publishes the model from
   ``metadata.json`` only if the held-out metric passes ``spec.qualityGate`` (the pipeline gates
   too; the distributed trainer does not, so the operator checks every run the same way).

The status written while a run is in flight changes only when the run's state does; the run is
read again after ``runs.poll_delay`` (see ``runs``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from slipway.api.v1alpha1.common import API_VERSION
from slipway.api.v1alpha1.trainingjob import TrainingJobSpec
from slipway.backends.localruns import LocalRunError
from slipway.backends.pipelines import PipelinesError
from slipway.builders.placement import PlacementError, resolve_pool
from slipway.k8s import ApiError

from .base import Context, NameConflict, Result, describe_validation, log, owner_of
from .conditions import Verdict, utc_now
from .runs import InFlight, Store, poll_delay, release, terminal
from .trainingplan import (
    DatasetVersion,
    distributed,
    fingerprint,
    gate_failure,
    history,
    output_uri,
    outputs,
    resolve_dataset,
    run_names,
    trainer_code,
)
from .trainingrun import Attempt, cancel_recorded, follow
from .trainingstatus import finish, stop

KIND = "TrainingJob"
RETRY_UNAVAILABLE_S = 30.0


def reconcile(ctx: Context, body: dict[str, Any]) -> Result:
    """Bring one TrainingJob to the outcome of its current generation's run."""
    owner = owner_of(body)
    try:
        spec = TrainingJobSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        problem = Verdict("Failed", False, "InvalidSpec", describe_validation(exc), degraded=True)
        return stop(ctx, body, problem, permanent=True)
    try:
        pool = resolve_pool(spec.placement, ctx.config.node_pools)
    except PlacementError as exc:
        problem = Verdict("Failed", False, exc.reason, str(exc), degraded=True)
        return stop(ctx, body, problem, permanent=True)
    old = body.get("status") or {}
    generation = int(body["metadata"].get("generation") or 1)
    recorded = old.get("run") or {}
    if recorded and recorded.get("generation") != generation:
        if not terminal(recorded.get("state")):
            _cancel_older(ctx, owner.namespace, recorded)
        recorded = {}
    settled = (recorded and terminal(recorded.get("state"))) or old.get("reusedFrom")
    if (
        settled
        and old.get("observedGeneration") == generation
        and old.get("phase") in ("Succeeded", "Failed")
    ):
        release(ctx, body)  # nothing in flight any more (a no-op unless a write was lost)
        return Result()
    local = _local(ctx, spec)
    if recorded:
        lineage = old.get("lineage") or {}
        data = DatasetVersion(
            str(lineage.get("dataset")),
            str(lineage.get("datasetVersion")),
            str(lineage.get("datasetDigest")),
            str(recorded.get("datasetUri")),
        )
        print_ = str(old.get("fingerprint"))
    else:
        resolved = resolve_dataset(ctx, owner.namespace, spec.dataset)
        if isinstance(resolved, Verdict):
            return stop(ctx, body, resolved, permanent=False)
        data = resolved
        print_ = fingerprint(spec, data.digest, trainer_code(spec.trainer.image, local))
        if spec.reuse == "IfIdentical":
            twin = _twin(ctx, body, print_)
            if twin is not None:
                return _reuse(ctx, body, spec, data, print_, twin)
    attempt = Attempt(owner, generation, spec, pool, data, run_names(owner, generation, spec))
    try:
        body, state = follow(ctx, body, attempt, recorded)
    except NameConflict as exc:
        return stop(ctx, body, exc.verdict(), permanent=False)
    except (PipelinesError, LocalRunError) as exc:
        problem = Verdict(
            "Pending",
            False,
            "BackendUnavailable",
            f"starting or reading run {attempt.name} failed: {exc}; retrying",
            degraded=True,
        )
        stop(ctx, body, problem, permanent=False)
        return InFlight(requeue_after=RETRY_UNAVAILABLE_S)
    except ApiError as exc:
        if exc.retriable:
            raise
        problem = Verdict("Failed", False, "ChildRejected", str(exc), degraded=True)
        return stop(ctx, body, problem, permanent=True)
    store = Store.for_provider(ctx.config, local)
    output = output_uri(spec, owner.namespace, attempt.name)
    started = str((old.get("startTime") if recorded else None) or state.get("created") or utc_now())
    base: dict[str, Any] = {
        "fingerprint": print_,
        "run": state,
        "startTime": started,
        "lineage": {
            "dataset": data.name,
            "datasetVersion": data.version,
            "datasetDigest": data.digest,
            "fingerprint": print_,
            "run": attempt.name,
        },
    }
    if not terminal(state["state"]):
        verdict = Verdict(
            "Running",
            False,
            "Training",
            f"run {attempt.name} is {str(state['state']).lower()}"
            + (f": {state['message']}" if state.get("message") else ""),
            progressing=True,
        )
        finish(ctx, body, verdict, {**base, "history": history(store, output)})
        return InFlight(requeue_after=poll_delay(started))
    return _ended(ctx, body, spec, store, output, base, state)


def _cancel_older(ctx: Context, namespace: str, recorded: dict[str, Any]) -> None:
    """The spec moved on while a run was in flight: stop that run (best effort, logged)."""
    try:
        cancel_recorded(ctx, namespace, recorded)
    except (PipelinesError, LocalRunError) as exc:
        log.warning("could not cancel run %s of an older generation: %s", recorded.get("name"), exc)


def _local(ctx: Context, spec: TrainingJobSpec) -> bool:
    """Whether this job's run happens on the operator's machine (the local providers)."""
    provider = ctx.config.training if distributed(spec) else ctx.config.pipelines
    return provider == "local"


def _ended(
    ctx: Context,
    body: dict[str, Any],
    spec: TrainingJobSpec,
    store: Store,
    output: str,
    base: dict[str, Any],
    state: dict[str, Any],
) -> Result:
    """A run just ended: publish the model, or say exactly why not."""
    base = {**base, "completionTime": state.get("finished") or utc_now()}
    base["history"] = history(store, output)
    if state["state"] not in ("SUCCEEDED", "Succeeded"):
        message = str(state.get("message") or "no reason given")
        if "quality gate failed" in message:
            reason = "QualityGateFailed"
            message = next(p for p in message.split("; ") if "quality gate failed" in p)
            message += " (spec.qualityGate); no model is published"
        elif state["state"] == "CANCELED":
            reason = "RunCanceled"
        elif state.get("provider") == "pipelines/none":
            reason = "NoPipelinesBackend"
        elif state.get("provider") == "training/none":
            reason = "NoTrainingBackend"
        else:
            reason = "TrainingFailed"
        verdict = Verdict("Failed", False, reason, f"run {state['name']}: {message}", degraded=True)
        body = release(ctx, body)
        finish(ctx, body, verdict, base)
        return Result()
    found = outputs(store, output)
    if found is None:
        problem = Verdict(
            "Running",
            False,
            "ResultsUnreadable",
            f"run {state['name']} succeeded but the operator cannot read {output}/metadata.json "
            "(mount the model store's claim into the operator at /mnt/pvc/<claim>); retrying",
            degraded=True,
        )
        finish(ctx, body, problem, base)
        return InFlight(requeue_after=RETRY_UNAVAILABLE_S)
    body = release(ctx, body)
    failure = gate_failure(spec, found.metrics)
    if failure is not None:
        verdict = Verdict("Failed", False, "QualityGateFailed", failure, degraded=True)
        finish(ctx, body, verdict, {**base, "metrics": found.metrics})
        return Result()
    lineage = {
        **base["lineage"],
        "modelUri": found.model["uri"],
        "modelDigest": found.model["digest"],
    }
    verdict = Verdict(
        "Succeeded", True, "ModelExported", _summary(spec, found.model, found.metrics)
    )
    finish(
        ctx,
        body,
        verdict,
        {**base, "metrics": found.metrics, "model": found.model, "lineage": lineage},
    )
    return Result()


def _summary(spec: TrainingJobSpec, model: dict[str, Any], metrics: dict[str, float]) -> str:
    metric = spec.quality_gate.metric
    value = metrics.get(metric)
    shown = f"{metric} {value:.4f}" if value is not None else "no metrics"
    return f"model {model['uri']} ({model['digest'][:19]}...), held-out {shown}"


def _twin(ctx: Context, body: dict[str, Any], print_: str) -> dict[str, Any] | None:
    """The earliest Succeeded TrainingJob of the namespace with this fingerprint and a model."""
    meta = body["metadata"]
    twins = [
        job
        for job in ctx.cluster.list(API_VERSION, KIND, meta["namespace"])
        if job["metadata"]["uid"] != meta["uid"]
        and not job["metadata"].get("deletionTimestamp")
        and (job.get("status") or {}).get("phase") == "Succeeded"
        and (job.get("status") or {}).get("fingerprint") == print_
        and (job.get("status") or {}).get("model")
    ]
    twins.sort(key=lambda j: (str(j["status"].get("completionTime")), j["metadata"]["name"]))
    return twins[0] if twins else None


def _reuse(
    ctx: Context,
    body: dict[str, Any],
    spec: TrainingJobSpec,
    data: DatasetVersion,
    print_: str,
    twin: dict[str, Any],
) -> Result:
    """Take the model of an identical, Succeeded TrainingJob instead of training again."""
    status = twin["status"]
    source = str(status.get("reusedFrom") or twin["metadata"]["name"])
    model = dict(status["model"])
    metrics = dict(status.get("metrics") or {})
    lineage = {
        "dataset": data.name,
        "datasetVersion": data.version,
        "datasetDigest": data.digest,
        "fingerprint": print_,
        "run": (status.get("lineage") or {}).get("run"),
        "modelUri": model.get("uri"),
        "modelDigest": model.get("digest"),
    }
    now = utc_now()
    base = {
        "fingerprint": print_,
        "reusedFrom": source,
        "metrics": metrics or None,
        "history": status.get("history"),
        "lineage": lineage,
        "startTime": (body.get("status") or {}).get("startTime") or now,
        "completionTime": (body.get("status") or {}).get("completionTime") or now,
    }
    failure = gate_failure(spec, metrics)
    if failure is not None:
        verdict = Verdict(
            "Failed",
            False,
            "QualityGateFailed",
            f"the identical model of TrainingJob {source!r}: {failure}",
            degraded=True,
        )
        finish(ctx, body, verdict, base)
        return Result()
    verdict = Verdict(
        "Succeeded",
        True,
        "ModelReused",
        f"reused the model of TrainingJob {source!r} (same fingerprint): "
        + _summary(spec, model, metrics),
    )
    finish(ctx, body, verdict, {**base, "model": model})
    return Result()


def finalize(ctx: Context, body: dict[str, Any]) -> None:
    """The TrainingJob is being deleted: cancel its in-flight run, then let it go."""
    recorded = (body.get("status") or {}).get("run") or {}
    if recorded and not terminal(recorded.get("state")):
        cancel_recorded(ctx, body["metadata"]["namespace"], recorded)
        ctx.cluster.event(body, "RunCanceled", f"run {recorded.get('name')} canceled on deletion")
    release(ctx, body)
