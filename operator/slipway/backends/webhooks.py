"""Rollout webhooks: POST the rollout's state as JSON, a 2xx answer within the timeout passes.

The payload names the ModelDeployment, both versions (id, model URI, digest), the phase, the step
and weight, and the hook's own metadata (Flagger sends name, namespace, phase and metadata; a
model rollout also needs the versions). What a hook's answer means (a gate, a failed check, an
abort) is the rollout's business (``reconcilers/rollout.py``); this module only calls.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from slipway.api.v1alpha1.rollout import RolloutStatus, Webhook

from .analysis import Target

MAX_MESSAGE = 200


@dataclass(frozen=True)
class HookAnswer:
    """What a hook said: passed (2xx), the HTTP code if any answer came, and a short message."""

    passed: bool
    code: int | None
    message: str


def payload(
    hook: Webhook, target: Target, state: RolloutStatus, versions: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The JSON body of one call. ``versions``: 'stable' and 'candidate' -> id, modelUri,
    modelDigest."""
    return {
        "name": target.name,
        "namespace": target.namespace,
        "kind": "ModelDeployment",
        "hook": {"name": hook.name, "type": hook.type},
        "strategy": state.strategy,
        "phase": state.phase,
        "step": state.step,
        "steps": state.steps,
        "weight": state.weight,
        "iterations": state.iterations,
        "failedChecks": state.failed_checks,
        "stable": versions.get("stable"),
        "candidate": versions.get("candidate"),
        "metadata": hook.metadata or {},
    }


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def call(url: str, body: dict[str, Any], timeout: float) -> HookAnswer:
    """POST ``body`` to ``url``; any failure to get a 2xx is a non-passing answer, never raised."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            text = reply.read(4096).decode(errors="replace")
            return HookAnswer(True, reply.status, _short(f"HTTP {reply.status} {text}".strip()))
    except urllib.error.HTTPError as exc:
        text = exc.read(4096).decode(errors="replace") if exc.fp else ""
        return HookAnswer(False, exc.code, _short(f"HTTP {exc.code} {text}".strip()))
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return HookAnswer(False, None, _short(f"no answer: {reason}"))
