"""The states hack/capture_health_testdata.py captures, one function per operator run.

``slipway_kinds``: Slipway's four kinds (real local runs) and SeldonDeployments (Seldon played);
``make_stale``: spec changes while the operator is stopped; ``trainjobs_and_experiments`` and
``pytorchjobs``: the Kubeflow children the operator renders, their controllers played.
"""

from __future__ import annotations

import copy

from health_capture_support import (
    API,
    GATE_CLOSED,
    KATIB,
    NOW,
    PYTORCH,
    SELDON,
    TRAINER,
    Capture,
    SeldonPlayer,
    available,
    canary,
    child_of,
    cond,
    dataset,
    distributed,
    metric,
    model_deployment,
    phase,
    play,
    rollout_phase,
    sdep_of,
    sweep,
    training_job,
)


def slipway_kinds(cap: Capture, ns: str, webhook: str) -> list[tuple[str, str, str]]:
    """Slipway's kinds and SeldonDeployments; returns what to make stale once the operator
    stopped: (kind, name, case)."""
    kube = cap.kube
    player = SeldonPlayer(kube, ns)
    player.held = {"serving", "broken"}
    player.start()

    # ModelDeployments first: they do not wait for training.
    kube.apply(model_deployment("serving", ns, 1))
    kube.apply(model_deployment("broken", ns, 2))
    cap.save(
        cap.until(API, "ModelDeployment", ns, "serving", phase("Progressing"), "start"),
        "progressing",
        "deployment-starting",
    )
    sdep = sdep_of(cap, ns, "serving")
    cap.save(sdep, "progressing", "no-state-yet")
    name = sdep["metadata"]["name"]
    creating = {"state": "Creating", "description": "Deployment serving-v01010101 is not ready"}
    cap.save(
        kube.patch_status(SELDON, "SeldonDeployment", ns, name, creating), "progressing", "creating"
    )
    cap.save(
        kube.patch_status(SELDON, "SeldonDeployment", ns, name, available(sdep)),
        "healthy",
        "available",
    )
    cap.save(
        cap.until(API, "ModelDeployment", ns, "serving", phase("Ready"), "Ready"),
        "healthy",
        "serving",
    )
    broken = sdep_of(cap, ns, "broken")
    failed = {
        "state": "Failed",
        "description": "Deployment broken-v02020202 failed: ImagePullBackOff",
    }
    cap.save(
        kube.patch_status(SELDON, "SeldonDeployment", ns, broken["metadata"]["name"], failed),
        "degraded",
        "failed",
    )
    cap.save(
        cap.until(API, "ModelDeployment", ns, "broken", phase("Degraded"), "Degraded"),
        "degraded",
        "deployment-failed",
    )

    # Progressive rollouts: a stable version 1, then version 2 as the candidate.
    passing = metric("error-percent", "vector(1)", 10)
    rollouts = {
        "canary-analysing": canary(passing, interval="1h"),
        "canary-rolled-back": canary(metric("error-percent", "vector(42)", 10)),
        "canary-inconclusive": canary(metric("error-percent", "vector(1) unless vector(1)", 10)),
        "canary-promotion-gate": canary(
            passing, webhooks=[{"name": "approve", "type": "confirm-promotion", "url": webhook}]
        ),
        "canary-rollout-gate": canary(
            passing, webhooks=[{"name": "approve", "type": "confirm-rollout", "url": webhook}]
        ),
        "canary-promoted": canary(passing),
    }
    for name, rollout in rollouts.items():
        kube.apply(model_deployment(name, ns, 1, **rollout))
    for name in rollouts:
        cap.until(API, "ModelDeployment", ns, name, phase("Ready"), "a stable version")
    for name, rollout in rollouts.items():
        kube.apply(model_deployment(name, ns, 2, **rollout))
    expected = [
        ("canary-analysing", ("Progressing",), "progressing", "rollout-analysing"),
        ("canary-rolled-back", ("Failed",), "degraded", "rolled-back"),
        ("canary-inconclusive", ("Holding",), "suspended", "rollout-inconclusive"),
        ("canary-promotion-gate", ("WaitingPromotion",), "suspended", "confirm-promotion"),
        ("canary-promoted", ("Succeeded",), "healthy", "promoted"),
    ]
    for name, phases, health, case in expected:
        cap.save(
            cap.until(API, "ModelDeployment", ns, name, rollout_phase(*phases), phases[0]),
            health,
            case,
        )
    gated = cap.until(
        API,
        "ModelDeployment",
        ns,
        "canary-rollout-gate",
        lambda o: ((o.get("status") or {}).get("rollout") or {}).get("reason") == GATE_CLOSED,
        "a closed confirm-rollout gate",
    )
    cap.save(gated, "suspended", "confirm-rollout")

    # Datasets: one ingests for real (Ingesting, then Ready); one fails its validation.
    kube.apply(dataset("digits", ns))
    kube.apply(dataset("strict", ns, validation={"minRows": 5000}))
    cap.save(
        cap.until(API, "Dataset", ns, "digits", phase("Ingesting"), "Ingesting"),
        "progressing",
        "ingesting",
    )
    cap.save(cap.until(API, "Dataset", ns, "digits", phase("Ready"), "Ready"), "healthy", "ready")
    cap.save(
        cap.until(API, "Dataset", ns, "strict", phase("Failed"), "Failed"),
        "degraded",
        "validation-failed",
    )

    # TrainingJobs: one trains for real; one fails its quality gate; one waits for a Dataset.
    kube.apply(training_job("mlp", ns))
    kube.apply(training_job("gated", ns, qualityGate={"metric": "accuracy", "minimum": 0.999}))
    kube.apply(training_job("early", ns, dataset={"name": "later", "version": "v1"}))
    cap.save(
        cap.until(API, "TrainingJob", ns, "mlp", phase("Running"), "Running"),
        "progressing",
        "training",
    )
    cap.save(
        cap.until(API, "TrainingJob", ns, "early", phase("Pending"), "Pending"),
        "degraded",
        "dataset-missing",
    )
    cap.save(
        cap.until(API, "TrainingJob", ns, "mlp", phase("Succeeded"), "Succeeded"),
        "healthy",
        "model-exported",
    )
    cap.save(
        cap.until(API, "TrainingJob", ns, "gated", phase("Failed"), "Failed"),
        "degraded",
        "quality-gate-failed",
    )

    # TuningSweeps: one runs two trials with Optuna; one names a node pool that does not exist.
    kube.apply(sweep("search", ns))
    kube.apply(sweep("nowhere", ns, placement={"nodePool": "tpu"}))
    cap.save(
        cap.until(API, "TuningSweep", ns, "nowhere", phase("Failed"), "Failed"),
        "degraded",
        "unknown-node-pool",
    )
    cap.save(
        cap.until(API, "TuningSweep", ns, "search", phase("Running"), "Running"),
        "progressing",
        "trials-running",
    )
    cap.save(
        cap.until(API, "TuningSweep", ns, "search", phase("Succeeded"), "Succeeded"),
        "healthy",
        "best-trial",
    )
    player.stop_flag.set()
    return [
        ("Dataset", "digits", "spec-not-observed"),
        ("TrainingJob", "mlp", "spec-not-observed"),
        ("TuningSweep", "search", "spec-not-observed"),
        ("ModelDeployment", "serving", "spec-not-observed"),
    ]


def make_stale(cap: Capture, ns: str, stale: list[tuple[str, str, str]]) -> None:
    """With the operator stopped, change each object's spec: generation moves past the
    status's observedGeneration, as it does between an edit and the next reconcile."""
    for kind, name, case in stale:
        live = cap.get(API, kind, ns, name)
        spec = copy.deepcopy(live["spec"])
        if kind == "Dataset":
            spec["retention"] = {"keepVersions": 3}
        elif kind == "TrainingJob":
            spec["trainer"]["epochs"] = 3
        elif kind == "TuningSweep":
            spec["maxTrialCount"] = 3
        else:
            spec["maxReplicas"] = 2
        manifest = {"apiVersion": API, "kind": kind, "metadata": {"name": name, "namespace": ns}}
        cap.kube.apply({**manifest, "spec": spec})
        cap.save(cap.get(API, kind, ns, name), "progressing", case)


# ---- Kubeflow children (second and third operator runs) -----------------------------------------


def trainjobs_and_experiments(cap: Capture, ns: str) -> None:
    """Kubeflow Trainer and Katib, played (the operator runs with trainjob and katib)."""
    kube = cap.kube
    kube.apply(distributed("ddp", ns))
    kube.apply(distributed("ddp-failing", ns))
    kube.apply(sweep("katib-search", ns))
    kube.apply(sweep("katib-failing", ns))

    job = child_of(cap, TRAINER, "TrainJob", ns, "trainingjob", "ddp")
    cap.save(job, "progressing", "created")
    node = {"name": "node", "active": 2, "ready": 2, "succeeded": 0, "failed": 0, "suspended": 0}
    play(cap, job, {"jobsStatus": [node]}, "progressing", "running")
    done = {**node, "active": 0, "ready": 0, "succeeded": 2}
    complete = cond("Complete", reason="JobsCompleted", message="jobs completed")
    play(cap, job, {"jobsStatus": [done], "conditions": [complete]}, "healthy", "complete")
    failing = child_of(cap, TRAINER, "TrainJob", ns, "trainingjob", "ddp-failing")
    play(
        cap,
        failing,
        {"conditions": [cond("Suspended", reason="Suspended", message="TrainJob is suspended")]},
        "suspended",
        "suspended",
    )
    failed = [
        cond("Suspended", "False", reason="Resumed", message="TrainJob is resumed"),
        cond("Failed", reason="BackoffLimitExceeded", message="node-0 exited with code 1"),
    ]
    play(cap, failing, {"conditions": failed}, "degraded", "failed")

    experiment = child_of(cap, KATIB, "Experiment", ns, "tuningsweep", "katib-search")
    created = cond("Created", reason="ExperimentCreated", message="Experiment is created")
    play(cap, experiment, {"conditions": [created], "startTime": NOW}, "progressing", "created")
    running = {
        "conditions": [
            created,
            cond("Running", reason="ExperimentRunning", message="Experiment is running"),
        ],
        "trials": 2,
        "trialsRunning": 1,
        "trialsSucceeded": 1,
        "runningTrialList": [f"{experiment['metadata']['name']}-b2"],
        "succeededTrialList": [f"{experiment['metadata']['name']}-a1"],
        "currentOptimalTrial": {
            "bestTrialName": f"{experiment['metadata']['name']}-a1",
            "parameterAssignments": [{"name": "learningRate", "value": "0.0042"}],
            "observation": {
                "metrics": [
                    {"name": "val_accuracy", "min": "0.91", "max": "0.95", "latest": "0.95"}
                ]
            },
        },
    }
    play(cap, experiment, running, "progressing", "running")
    succeeded = {
        **running,
        "conditions": [
            created,
            cond("Running", "False", reason="ExperimentRunning", message="Experiment is running"),
            cond(
                "Succeeded",
                reason="ExperimentMaxTrialsReached",
                message="Experiment has succeeded because max trial count has reached",
            ),
        ],
        "trialsRunning": 0,
        "trialsSucceeded": 2,
        "completionTime": NOW,
    }
    play(cap, experiment, succeeded, "healthy", "max-trials-reached")
    failing_experiment = child_of(cap, KATIB, "Experiment", ns, "tuningsweep", "katib-failing")
    failed_experiment = {
        "conditions": [
            created,
            cond("Running", "False", reason="ExperimentRunning", message="Experiment is running"),
            cond(
                "Failed",
                reason="ExperimentMaxFailedTrialsReached",
                message="Experiment has failed because max failed count has reached",
            ),
        ],
        "trials": 2,
        "trialsFailed": 2,
        "completionTime": NOW,
    }
    play(cap, failing_experiment, failed_experiment, "degraded", "max-failed-trials-reached")


def pytorchjobs(cap: Capture, ns: str) -> None:
    """The Training Operator, played (the operator runs with pytorchjob)."""
    cap.kube.apply(distributed("legacy", ns))
    cap.kube.apply(distributed("legacy-failing", ns))
    job = child_of(cap, PYTORCH, "PyTorchJob", ns, "trainingjob", "legacy")
    created = cond("Created", reason="PyTorchJobCreated", message="PyTorchJob legacy is created.")
    play(cap, job, {"conditions": [created]}, "progressing", "created")
    running = {
        "startTime": NOW,
        "conditions": [
            created,
            cond("Running", reason="PyTorchJobRunning", message="PyTorchJob legacy is running."),
        ],
        "replicaStatuses": {"Master": {"active": 1}, "Worker": {"active": 1}},
    }
    play(cap, job, running, "progressing", "running")
    succeeded = {
        "completionTime": "2026-11-28T10:30:00Z",
        "conditions": [
            created,
            cond("Running", "False", reason="PyTorchJobRunning"),
            cond(
                "Succeeded",
                reason="PyTorchJobSucceeded",
                message="PyTorchJob legacy is successfully completed.",
            ),
        ],
        "replicaStatuses": {"Master": {"succeeded": 1}, "Worker": {"succeeded": 1}},
    }
    play(cap, job, succeeded, "healthy", "succeeded")
    failing = child_of(cap, PYTORCH, "PyTorchJob", ns, "trainingjob", "legacy-failing")
    suspended = cond("Suspended", reason="PyTorchJobSuspended", message="PyTorchJob is suspended.")
    play(cap, failing, {"conditions": [created, suspended]}, "suspended", "suspended")
    failed = {
        "conditions": [
            created,
            cond(
                "Suspended", "False", reason="PyTorchJobResumed", message="PyTorchJob is resumed."
            ),
            cond(
                "Failed",
                reason="PyTorchJobFailed",
                message="PyTorchJob legacy-failing is failed because 1 Master replica(s) failed.",
            ),
        ],
        "replicaStatuses": {"Master": {"failed": 1}, "Worker": {"active": 1}},
    }
    play(cap, failing, failed, "degraded", "failed")
