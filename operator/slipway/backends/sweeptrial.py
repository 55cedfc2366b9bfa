"""One trial of a local sweep while its run is in flight: its Optuna trial, and its metrics file
read as it grows.

The trainer appends one JSON line per epoch to ``--metrics-file`` (``<run folder>/metrics.jsonl``).
A line is taken only once it ends with a newline (the trainer may be writing it), and an epoch
seen twice (a trainer resumed from a checkpoint writes it again) keeps its last record.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna


@dataclass
class Active:
    """A trial whose run is in flight."""

    trial: optuna.trial.Trial
    name: str
    metrics_file: Path
    offset: int = 0
    records: dict[int, dict[str, Any]] = field(default_factory=dict)

    def new_records(self) -> list[dict[str, Any]]:
        """The epoch records written since the last call."""
        try:
            with open(self.metrics_file, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        out = []
        for line in complete.decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and isinstance(record.get("epoch"), int):
                    out.append(record)
        return out

    def last_metrics(self, names: list[str]) -> dict[str, float]:
        """The metrics ``names`` of the last epoch read."""
        filled = [e for e, r in self.records.items() if r]
        if not filled:
            return {}
        last = self.records[max(filled)]
        return {
            k: float(v)
            for k, v in last.items()
            if k in names and isinstance(v, int | float) and not isinstance(v, bool)
        }
