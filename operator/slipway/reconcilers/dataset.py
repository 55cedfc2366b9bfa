"""Reconcile a Dataset: one ingestion run per change of the data it describes, versions in status.

The spec fields that define the data (source, format, storage, validation) are hashed; while the
hash equals the one of the recorded ingestion run, that run is followed and never started again.
A new hash starts the ingestion pipeline under a deterministic name (the object's uid plus its
generation), after looking that name up, so an operator that restarts mid-run finds its run
instead of starting a second one; a still-running run of an older hash is cancelled.

The run writes its snapshot to ``<storageUri>/<namespace>/<name>/<run folder>``. When it succeeds
the snapshot's digest (sha256 of its canonical manifest) decides: a digest already recorded means
identical data, and no new version (the latest pointer moves to that version); a new digest
becomes the next version ``v<N+1>``. A failed run (a validation rule, an unreadable source) is
``Degraded`` with the failing rules in the message; it is terminal for that spec, so there is no
retry loop: the user's fix is a spec change, which ingests again. Older versions leave
``status.versions`` under the retention policy, except a version a TrainingJob of the namespace
references; their data is deleted only when ``retention.deleteData`` says so.

How a run's end is noticed: see ``runs`` (a requeue while the run is in flight, no timer).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pydantic import ValidationError

from slipway.api.v1alpha1.common import API_VERSION
from slipway.api.v1alpha1.dataset import DatasetSpec
from slipway.api.v1alpha1.trainingjob import INFO as TRAINING_JOB
from slipway.backends import PipelineRun, RunStatus, pipelines_backend
from slipway.backends.localruns import LocalRunError
from slipway.backends.pipelines import FAILED, INGESTION, PipelinesError, run_name
from slipway.builders.meta import Owner

from .base import Context, Result, describe_validation, owner_of, problem_changed, write_status
from .conditions import Verdict, merge_conditions, utc_now
from .datasetrules import rules_json, summary
from .runs import (
    InFlight,
    Store,
    hold,
    join,
    plain,
    poll_delay,
    release,
    terminal,
)

KIND = "Dataset"
RETRY_UNAVAILABLE_S = 30.0
_VERSION = re.compile(r"^v(\d+)$")


def inputs_of(spec: DatasetSpec) -> str:
    """Hash of the spec fields that define the data: a change of any of them ingests again."""
    data = spec.model_dump(by_alias=True, mode="json", include={"source", "format", "storage_uri"})
    data["validation"] = spec.validation.to_api()
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ingestion_run(owner: Owner, generation: int, spec: DatasetSpec) -> tuple[PipelineRun, str]:
    """The pipeline run for ``generation`` and the snapshot URI it writes."""
    folder = f"g{generation}-{owner.uid.replace('-', '')[:8]}"
    store = join(spec.storage_uri, owner.namespace)
    parameters: dict[str, Any] = {
        "source_uri": spec.source,
        "store_uri": store,
        "name": owner.name,
        "version": folder,
        "rules_json": rules_json(spec.validation),
        "allow_identical": True,  # a retried step of the same run may rewrite identical data
    }
    run = PipelineRun(run_name(owner, generation), owner.namespace, INGESTION, parameters)
    return run, join(store, owner.name, folder)


def reconcile(ctx: Context, body: dict[str, Any]) -> Result:
    """Ingest when the data-defining spec changed, follow the run, record versions."""
    owner = owner_of(body)
    try:
        spec = DatasetSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        problem = Verdict("Failed", False, "InvalidSpec", describe_validation(exc), degraded=True)
        _finish(ctx, body, problem, _kept(body))
        return Result(permanent=problem.message)
    old = body.get("status") or {}
    generation = int(body["metadata"].get("generation") or 1)
    backend = pipelines_backend(ctx.config.pipelines, ctx.config)
    store = Store.for_provider(ctx.config, local=ctx.config.pipelines == "local")
    record = dict(old.get("ingestion") or {})
    inputs = inputs_of(spec)
    try:
        if record.get("inputs") != inputs:
            if record.get("id") and not terminal(record.get("state")):
                backend.cancel(str(record["id"]))  # the spec moved on: stop the superseded run
            run, uri = ingestion_run(owner, generation, spec)
            found = backend.find(run)
            if found is None and ctx.config.pipelines == "none":
                found = backend.start(run)  # SKIPPED, with the reason: reported, never held
            elif found is None:
                body = hold(ctx, body)
                found = backend.start(run)
                ctx.cluster.event(body, "IngestionStarted", f"run {run.name} -> {uri}")
            record = _record(run, uri, generation, inputs, found, ctx.config.pipelines)
        elif not terminal(record.get("state")):
            record = {**record, **_observed(backend, owner, record)}
    except (PipelinesError, LocalRunError) as exc:
        problem = Verdict(
            "Degraded",
            bool(old.get("versions")),
            "PipelinesUnavailable",
            f"the {ctx.config.pipelines} pipelines provider failed: {exc}; retrying",
            degraded=True,
        )
        _finish(ctx, body, problem, _kept(body))
        return InFlight(requeue_after=RETRY_UNAVAILABLE_S)
    return _settle(ctx, body, spec, store, record)


def _record(
    run: PipelineRun, uri: str, generation: int, inputs: str, found: RunStatus, provider: str
) -> dict[str, Any]:
    return {
        "name": run.name,
        "id": found.run_id or None,
        "provider": provider,
        "generation": generation,
        "inputs": inputs,
        "uri": uri,
        "state": found.state,
        "message": plain(found.message),
        "finished": found.finished,
        "created": found.created or utc_now(),
        "outcome": None,
    }


def _observed(backend: Any, owner: Owner, record: dict[str, Any]) -> dict[str, Any]:
    """The run's current state, by id, else by name; a run the system forgot is FAILED."""
    found = backend.status(record["id"]) if record.get("id") else None
    if found is None:
        found = backend.find(PipelineRun(record["name"], owner.namespace, INGESTION))
    if found is None:
        return {
            "state": FAILED,
            "message": f"the pipelines system no longer knows run {record['name']}; change the "
            "spec to ingest again",
        }
    return {
        "id": found.run_id or record.get("id"),
        "state": found.state,
        "message": plain(found.message),
        "finished": found.finished,
    }


def _settle(
    ctx: Context, body: dict[str, Any], spec: DatasetSpec, store: Store, record: dict[str, Any]
) -> Result:
    """Record the run's outcome once it is final, apply retention, write status."""
    kept = _kept(body)
    versions: list[dict[str, Any]] = list(kept["versions"] or [])
    latest = kept["latestVersion"]
    if not terminal(record.get("state")):
        verdict = Verdict(
            "Ingesting",
            bool(versions),
            "Ingesting",
            f"run {record['name']} is {str(record['state']).lower()} (writing {record['uri']})",
            progressing=True,
        )
        status = _status(record, versions, latest)
        _finish(ctx, body, verdict, status)
        return InFlight(requeue_after=poll_delay(record.get("created")))
    if record.get("outcome") is None:
        record, versions, latest, problem = _outcome(store, record, versions, latest)
        if problem is not None:  # the run succeeded but its snapshot cannot be read
            _finish(ctx, body, problem, _status(record, versions, latest))
            return InFlight(requeue_after=RETRY_UNAVAILABLE_S)
    body = release(ctx, body)
    versions, dropped = _retain(ctx, body, spec, versions, latest)
    for entry in dropped:
        deleted = spec.retention.delete_data and store.delete(entry["uri"])
        what = "deleted its data" if deleted else "kept its data"
        ctx.cluster.event(body, "VersionForgotten", f"{entry['version']}: {what} ({entry['uri']})")
    _finish(ctx, body, judge(record, versions, latest), _status(record, versions, latest))
    return Result()


def _outcome(
    store: Store, record: dict[str, Any], versions: list[dict[str, Any]], latest: str | None
) -> tuple[dict[str, Any], list[dict[str, Any]], str | None, Verdict | None]:
    """Turn a final run into Failed, Unchanged or a NewVersion (with the version appended)."""
    if record["state"] != "SUCCEEDED":
        return {**record, "outcome": "Failed"}, versions, latest, None
    manifest = store.read_bytes(join(record["uri"], "manifest.json"))
    if manifest is None:
        problem = Verdict(
            "Degraded",
            bool(versions),
            "SnapshotUnreadable",
            f"run {record['name']} succeeded but the operator cannot read {record['uri']}/"
            "manifest.json (mount the storage claim into the operator at /mnt/pvc/<claim>)",
            degraded=True,
        )
        return record, versions, latest, problem
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    rows = int(json.loads(manifest).get("rows") or 0)
    same = next((v for v in versions if v["digest"] == digest), None)
    if same is not None:
        return {**record, "outcome": "Unchanged"}, versions, same["version"], None
    numbers = [int(m.group(1)) for v in versions if (m := _VERSION.match(v["version"]))]
    entry = {
        "version": f"v{max(numbers, default=0) + 1}",
        "digest": digest,
        "rows": rows,
        "uri": record["uri"],
        "created": record.get("finished") or utc_now(),
        "run": record["name"],
        "validation": summary(store.read_json(join(record["uri"], "validation.json"))),
    }
    return {**record, "outcome": "NewVersion"}, [*versions, entry], entry["version"], None


def referenced(ctx: Context, namespace: str, name: str) -> set[str]:
    """Versions and digests of Dataset ``name`` that TrainingJobs of ``namespace`` reference."""
    found: set[str] = set()
    for job in ctx.cluster.list(API_VERSION, TRAINING_JOB.kind, namespace):
        ref = (job.get("spec") or {}).get("dataset") or {}
        if ref.get("name") == name:
            found.update(str(ref[k]) for k in ("version", "digest") if ref.get(k))
    return found


def _retain(
    ctx: Context,
    body: dict[str, Any],
    spec: DatasetSpec,
    versions: list[dict[str, Any]],
    latest: str | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Forget the oldest versions beyond ``keepVersions``: never the latest, never one in use."""
    excess = len(versions) - spec.retention.keep_versions
    if excess <= 0:
        return versions, []
    meta = body["metadata"]
    used = referenced(ctx, meta["namespace"], meta["name"])
    dropped: list[dict[str, Any]] = []
    for entry in versions:
        if len(dropped) == excess:
            break
        if entry["version"] != latest and not {entry["version"], entry["digest"]} & used:
            dropped.append(entry)
    return [v for v in versions if v not in dropped], dropped


def judge(record: dict[str, Any], versions: list[dict[str, Any]], latest: str | None) -> Verdict:
    """Ready / Degraded from a final run and the versions kept."""
    current = next((v for v in versions if v["version"] == latest), None)
    if record.get("outcome") == "Failed":
        message = f"ingestion run {record['name']} {str(record['state']).lower()}"
        detail = str(record.get("message") or "")
        if detail:
            message += f": {detail}"
        if current is not None:
            message += f"; version {current['version']} stays the latest"
        return Verdict(
            "Degraded" if current else "Failed",
            current is not None,
            _failure_reason(str(record["state"]), detail),
            message,
            degraded=True,
        )
    assert current is not None
    note = " (unchanged data)" if record.get("outcome") == "Unchanged" else ""
    return Verdict(
        "Ready",
        True,
        "Available",
        f"version {current['version']}{note}: {current['digest']}, {current['rows']} rows",
    )


def _failure_reason(state: str, message: str) -> str:
    if state == "CANCELED":
        return "IngestionCanceled"
    if state == "SKIPPED":
        return "NoPipelinesBackend"
    if "failed rules" in message or "validation FAILED" in message:
        return "ValidationFailed"
    return "IngestionFailed"


def _kept(body: dict[str, Any]) -> dict[str, Any]:
    old = body.get("status") or {}
    keys = ("ingestion", "versions", "latestVersion", "latestDigest", "shortDigest", "latestRows")
    return {k: old.get(k) for k in keys}


def _status(
    record: dict[str, Any], versions: list[dict[str, Any]], latest: str | None
) -> dict[str, Any]:
    current = next((v for v in versions if v["version"] == latest), None)
    digest = current["digest"] if current else None
    return {
        "ingestion": record,
        "versions": versions or None,
        "latestVersion": latest if current else None,
        "latestDigest": digest,
        "shortDigest": digest[len("sha256:") :][:12] if digest else None,
        "latestRows": current["rows"] if current else None,
    }


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
    """Events for transitions: a new latest version, unchanged data, a new problem."""
    before = (old.get("ingestion") or {}).get("outcome")
    after = (new.get("ingestion") or {}).get("outcome")
    if after in ("NewVersion", "Unchanged") and (
        after != before or old.get("latestDigest") != new.get("latestDigest")
    ):
        reason = "NewVersion" if after == "NewVersion" else "DataUnchanged"
        ctx.cluster.event(body, reason, verdict.message)
    if verdict.degraded and problem_changed(old, new):
        ctx.cluster.event(body, verdict.reason, verdict.message, warning=True)


def finalize(ctx: Context, body: dict[str, Any]) -> None:
    """The Dataset is being deleted: cancel its in-flight ingestion, then let it go."""
    record = (body.get("status") or {}).get("ingestion") or {}
    if record.get("id") and not terminal(record.get("state")):
        backend = pipelines_backend(str(record.get("provider") or ctx.config.pipelines), ctx.config)
        backend.cancel(str(record["id"]))
        ctx.cluster.event(body, "IngestionCanceled", f"run {record['name']} canceled on deletion")
    release(ctx, body)
