"""Reconcile a TuningSweep: one experiment per spec (up to its trial counts), its best model in
status.

Order of operations (``sweepplan`` says what each piece is made of):

1. The spec is checked before anything runs: pydantic (``InvalidSpec``), then what CEL cannot see
   (a metric the trainer does not report, a parameter the trainer does not take, unknown algorithm
   settings), then the node pool. Each problem names its field; nothing is started.
2. The template's dataset version is resolved (a missing or ingesting Dataset is a condition
   naming ``spec.trialTemplate.spec.dataset``; the Dataset's changes reconcile the sweep again).
   Once an experiment runs for this generation, its recorded dataset is used, not looked up again.
3. The experiment, under its deterministic name. ``katib``: the Experiment is a child, applied
   with ``Children`` (never adopted; the counts are the only fields that differ between two
   applies of one name) and the sweep's older Experiments are pruned. ``local``: the cancel-run
   finalizer goes on the object before a sweep runner can start (``runs.hold``), the sweep's older
   studies are stopped, the runner is started once (``LocalTuning.start`` is idempotent), and the
   finalizer comes off when the study ends.
4. What the provider observes becomes the status (``sweepstatus``): the counts and the best trials
   of the current experiment; once it succeeds, its best trial's model, read from the trial's own
   ``metadata.json``, becomes ``bestTrial`` (after the template's quality gate).

Katib reports through its Experiment, which the handlers watch; a local study is read again after
a delay while it runs (``runs.InFlight``), as TrainingJobs' local runs are.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from slipway.api.v1alpha1.tuningsweep import MAX_BEST_TRIALS, TuningSweepSpec
from slipway.backends.localruns import LocalRunError
from slipway.backends.tuning import (
    FAILED,
    MAX_TRIALS_REACHED,
    PENDING,
    SUCCEEDED,
    SweepRequest,
    SweepState,
    TuningBackend,
    ranked,
    tuning_backend,
)
from slipway.builders.meta import Owner
from slipway.builders.placement import PlacementError, resolve_pool
from slipway.k8s import ApiError

from .base import Children, Context, NameConflict, Result, describe_validation, log, owner_of
from .conditions import Verdict
from .runs import InFlight, Store, hold, poll_delay, release
from .sweepplan import describe, experiment_name, problems, request, trial_output
from .sweepstatus import finish as write
from .sweepstatus import stop
from .trainingplan import DatasetVersion, gate_failure, resolve_dataset

KIND = "TuningSweep"
RETRY_S = 30.0
MAX_POLL_S = 10.0  # a local study's trials end every few seconds: look at least this often


def _problem(reason: str, message: str) -> Verdict:
    return Verdict("Failed", False, reason, message, degraded=True)


def reconcile(ctx: Context, body: dict[str, Any]) -> Result:
    """Bring one TuningSweep's experiment to its spec and report it."""
    owner = owner_of(body)
    try:
        spec = TuningSweepSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        return stop(ctx, body, _problem("InvalidSpec", describe_validation(exc)), permanent=True)
    found = problems(spec)
    if found is not None:
        return stop(ctx, body, _problem(*found), permanent=True)
    template = spec.trial_template.spec
    try:
        pool = resolve_pool(template.placement, ctx.config.node_pools)
    except PlacementError as exc:
        message = str(exc).replace("spec.placement", "spec.trialTemplate.spec.placement")
        return stop(ctx, body, _problem(exc.reason, message), permanent=True)
    provider = ctx.config.tuning
    backend = tuning_backend(provider, ctx.config)
    generation = int(body["metadata"].get("generation") or 1)
    recorded = (body.get("status") or {}).get("experiment") or {}
    if recorded.get("generation") == generation and recorded.get("provider") == provider:
        data = DatasetVersion(
            str(recorded.get("dataset")),
            str(recorded.get("datasetVersion")),
            str(recorded.get("datasetDigest")),
            str(recorded.get("datasetUri")),
        )
    else:
        resolved = resolve_dataset(ctx, owner.namespace, template.dataset)
        if isinstance(resolved, Verdict):
            message = resolved.message.replace("spec.dataset", "spec.trialTemplate.spec.dataset")
            verdict = Verdict(
                resolved.phase,
                False,
                resolved.reason,
                message,
                progressing=resolved.progressing,
                degraded=resolved.degraded,
            )
            return stop(ctx, body, verdict, permanent=False)
        data = resolved
    name = experiment_name(owner, spec, data, provider)
    req = request(owner, name, spec, data, pool, in_pods=backend.kind != "None")
    try:
        body, state = _run(ctx, body, owner, provider, backend, req)
    except NameConflict as exc:
        return stop(ctx, body, exc.verdict(), permanent=False)
    except (LocalRunError, OSError) as exc:
        problem = Verdict(
            "Pending",
            False,
            "BackendUnavailable",
            f"starting or reading experiment {name} failed: {exc}; retrying",
            degraded=True,
        )
        stop(ctx, body, problem, permanent=False)
        return InFlight(requeue_after=RETRY_S)
    except ApiError as exc:
        if exc.retriable:
            raise
        return stop(ctx, body, _problem("ChildRejected", str(exc)), permanent=True)
    return _report(ctx, body, spec, provider, generation, data, req, state)


def _run(
    ctx: Context,
    body: dict[str, Any],
    owner: Owner,
    provider: str,
    backend: TuningBackend,
    req: SweepRequest,
) -> tuple[dict[str, Any], SweepState]:
    """Apply or start the experiment; stop or prune older ones; observe it."""
    manifest = backend.render(owner, req)
    if manifest is not None:
        live, created, pruned = Children(ctx, owner).apply_only(manifest)
        if created:
            ctx.cluster.event(body, "ExperimentCreated", f"{backend.kind} {req.name} created")
        for old in pruned:
            log.info("%s %s/%s belongs to an older spec", backend.kind, owner.namespace, old)
        trials: list[dict[str, Any]] = []
        source = backend.trials_of(req)
        if source is not None:
            api_version, kind, selector = source
            trials = ctx.cluster.list(api_version, kind, owner.namespace, selector)
        return body, backend.observe(req, live, trials)
    if provider == "none":
        return body, backend.observe(req, None, [])
    for old in backend.stop(owner, {req.name}):
        ctx.cluster.event(body, "ExperimentStopped", f"local study {old} belongs to an older spec")
    before = backend.observe(req, None, [])
    finished = before.counts.total - before.counts.running - before.counts.pending
    resumes = before.reason == MAX_TRIALS_REACHED and req.max_trials > finished
    if not before.terminal or resumes:
        body = hold(ctx, body)
    backend.start(owner, req)
    state = backend.observe(req, None, [])
    if before.phase == PENDING and state.phase != PENDING:
        ctx.cluster.event(body, "ExperimentCreated", f"local study {req.name} started")
    if state.terminal:
        body = release(ctx, body)
    return body, state


def _report(
    ctx: Context,
    body: dict[str, Any],
    spec: TuningSweepSpec,
    provider: str,
    generation: int,
    data: DatasetVersion,
    req: SweepRequest,
    state: SweepState,
) -> Result:
    old = body.get("status") or {}
    store = Store.for_provider(ctx.config, local=provider == "local")
    best = ranked(state.trials, spec.objective.type == "maximize")
    table = []
    for trial in best[:MAX_BEST_TRIALS]:
        out = trial_output(store, req.output_root, req.name, trial.name, data.digest, False)
        table.append(
            {
                "name": trial.name,
                "parameters": trial.parameters,
                "objective": trial.objective,
                "metrics": trial.metrics or None,
                "model": {"uri": out.uri, "digest": out.digest} if out.uri else None,
            }
        )
    lineage = {
        "dataset": data.name,
        "datasetVersion": data.version,
        "datasetDigest": data.digest,
        "tuningSweep": body["metadata"]["name"],
    }
    extra: dict[str, Any] = {
        "experiment": {
            "name": req.name,
            "provider": provider,
            "generation": generation,
            "dataset": data.name,
            "datasetVersion": data.version,
            "datasetDigest": data.digest,
            "datasetUri": data.uri,
            "reason": state.reason,
            "startTime": state.started,
            "completionTime": state.finished,
        },
        **state.counts.to_status(),
        # Rounded for `kubectl get sweep`; bestTrials and bestTrial hold the exact values.
        "bestObjective": round(best[0].objective, 4) if best and best[0].objective else None,
        "bestTrials": table or None,
        "bestTrial": old.get("bestTrial"),
        "lineage": old.get("lineage") if old.get("bestTrial") else lineage,
    }
    katib = (state.phase == SUCCEEDED, state.reason, state.message)
    metric = spec.objective.objective_metric_name
    progress = (
        f"{state.counts.running} running, {state.counts.succeeded} succeeded, "
        f"{state.counts.early_stopped} stopped early, {state.counts.failed} failed"
        + (f"; best {metric} {best[0].objective:.4f} ({best[0].name})" if best else "")
    )
    if state.phase == FAILED:
        verdict = _problem(state.reason, state.message or f"experiment {req.name} failed")
    elif state.phase != SUCCEEDED:
        verdict = Verdict(
            "Running" if state.phase != PENDING else "Pending",
            False,
            state.reason,
            f"experiment {req.name}: {state.message or progress}",
            progressing=True,
        )
    else:
        chosen = next((t for t in best if t.name == state.optimal), best[0] if best else None)
        if chosen is None:
            verdict = _problem(
                "NoSuccessfulTrial",
                f"experiment {req.name} ended ({state.reason}) without a succeeded trial that "
                f"reported {metric}",
            )
        else:
            before = old.get("bestTrial") or {}
            verify = (before.get("name"), before.get("experiment")) != (chosen.name, req.name)
            out = trial_output(store, req.output_root, req.name, chosen.name, data.digest, verify)
            if out.problem is not None:
                problem = Verdict(
                    "Succeeded",
                    False,
                    "ResultsUnreadable",
                    f"best trial {chosen.name}: {out.problem} (mount the model store's claim "
                    "into the operator at /mnt/pvc/<claim>); retrying",
                    degraded=True,
                )
                write(ctx, body, problem, extra, katib)
                return InFlight(requeue_after=RETRY_S)
            failure = gate_failure(spec.trial_template.spec, out.metrics or {})
            if failure is not None:
                failure = failure.replace("spec.qualityGate", "spec.trialTemplate.spec.qualityGate")
                verdict = _problem("QualityGateFailed", f"best trial {chosen.name}: {failure}")
            else:
                extra["bestTrial"] = {
                    "name": chosen.name,
                    "experiment": req.name,
                    "parameters": chosen.parameters,
                    "metrics": chosen.metrics,
                    "objective": chosen.objective,
                    "modelUri": out.uri,
                    "modelDigest": out.digest,
                }
                extra["lineage"] = {
                    **lineage,
                    "trial": chosen.name,
                    "modelUri": out.uri,
                    "modelDigest": out.digest,
                }
                verdict = Verdict(
                    "Succeeded",
                    True,
                    state.reason,
                    f"{state.reason}: best trial {chosen.name} ({describe(chosen.parameters)}) "
                    f"{metric} {chosen.objective:.4f}; model {out.uri}; {progress}",
                )
    write(ctx, body, verdict, extra, katib)
    if provider == "local" and not state.terminal:
        return InFlight(requeue_after=min(MAX_POLL_S, poll_delay(state.started)))
    return Result()


def finalize(ctx: Context, body: dict[str, Any]) -> None:
    """The TuningSweep is being deleted: stop its local studies, then let it go."""
    backend = tuning_backend(ctx.config.tuning, ctx.config)
    stopped = backend.stop(owner_of(body), set())
    if stopped:
        ctx.cluster.event(body, "ExperimentStopped", f"stopped {', '.join(stopped)} on deletion")
    release(ctx, body)
