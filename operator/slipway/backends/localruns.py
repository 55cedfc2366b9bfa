"""Detached local runs: the machinery under both ``local`` providers (pipelines and training).

A run is a folder ``<store>/runs/<run name>/`` and a process tree in a session of its own, so an
operator that stops or restarts leaves it running and finds it again by name:

* ``spec.json``: what to run (argv, environment, working folder, optional interpreter to create);
  creating the folder claims the name, so one name is launched at most once, even by two
  operators at the same time;
* ``pid``: the supervisor's pid and start time (a reused pid is not mistaken for the run);
* ``log``: stdout and stderr of the whole tree;
* ``result.json`` (optional): what the command itself reports (``outputs``, ``error``);
* ``state.json``: the final state, written once and atomically (the first writer wins: the
  supervisor when the command ends, ``cancel`` when it stops the run).

The supervisor is this module run by the operator's own interpreter (stdlib only). It resolves
the interpreter when the spec names a ``hack/venv.sh`` environment instead of a path (creating it on
first use, under a file lock, without blocking the operator), runs the command as its child, and
records SUCCEEDED (exit 0) or FAILED with the most precise message it can find in the log.

Reading a run never starts one: a live supervisor is RUNNING, a final state is that state, and a
dead supervisor without a final state is FAILED with a message saying so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from .storage import default_store

RUNNING = "RUNNING"
PENDING = "PENDING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELED = "CANCELED"
START_GRACE_S = 120.0  # a claimed folder with no supervisor after this long never started
_PROC = Path("/proc")
_SUPERVISOR = "from slipway.backends.localruns import main; main()"


class LocalRunError(RuntimeError):
    """A local run cannot be launched (no interpreter, no checkout, unwritable store)."""


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def checkout() -> Path | None:
    """The Slipway checkout the operator runs from (it has the trainer and pipelines sources)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pipelines" / "slipway_pipelines").is_dir() and (
            parent / "images" / "trainer" / "src"
        ).is_dir():
            return parent
    return None


@dataclass(frozen=True)
class Venv:
    """An environment ``hack/venv.sh NAME REQUIREMENTS...`` makes (paths: from the checkout)."""

    name: str
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class RunRecord:
    """What a run folder says about its run."""

    name: str
    state: str
    message: str = ""
    created: str | None = None
    finished: str | None = None
    outputs: dict[str, JsonValue] = field(default_factory=dict)
    folder: Path | None = None


def _write_atomic(path: Path, data: dict[str, Any], exclusive: bool = False) -> bool:
    """Write JSON through a temporary file; ``exclusive``: only if ``path`` does not exist yet."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    try:
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        os.replace(tmp, path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (Linux), to tell a reused pid apart."""
    try:
        return (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child, so it is no zombie
    if _PROC.is_dir():
        try:
            fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return False
        return fields[0] not in ("Z", "X") and (start is None or fields[19] == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # kfp.local colours its log lines
_RULE = re.compile(r"^\s*FAIL (.+)$")
_ERROR = re.compile(r"^(?:error: (.+)|[A-Za-z_][\w.]*(?:Error|Exception|Failed|Exit): (.+))$")


def failure_summary(log: str, limit: int = 1000) -> str:
    """The most precise reason a log gives: failed validation rules, else the last error line."""
    lines = [line.strip() for line in _ANSI.sub("", log).splitlines() if line.strip()]
    rules = [m.group(1).strip() for m in map(_RULE.match, lines) if m]
    if rules:
        return ("failed rules: " + "; ".join(dict.fromkeys(rules)))[:limit]
    errors = [
        (m.group(1) or m.group(2)).strip()
        for m in map(_ERROR.match, lines)
        if m and "finished with status FAILURE" not in m.string
    ]
    return (errors[-1] if errors else " | ".join(lines[-3:]))[:limit]


class LocalRuns:
    """Launch, read and cancel detached runs under ``root`` (``<store>/runs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def folder(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise LocalRunError(f"invalid run name {name!r}")
        return self.root / name

    def launch(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        venv: Venv | None = None,
        info: dict[str, Any] | None = None,
        files: dict[str, str] | None = None,
    ) -> RunRecord:
        """Start ``argv`` as run ``name`` unless that name was ever launched; returns its record.

        With ``venv``, ``argv[0]`` is replaced by that environment's python (created if missing).
        ``files`` (name -> text) are written into the run folder before the command starts.
        """
        folder = self.folder(name)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            record = self.read(name)
            assert record is not None
            return record
        spec = {
            "name": name,
            "argv": argv,
            "env": env or {},
            "venv": {"name": venv.name, "requirements": list(venv.requirements)} if venv else None,
            "checkout": str(checkout() or ""),
            "created": now(),
            "info": info or {},
        }
        for file_name, text in (files or {}).items():
            (folder / file_name).write_text(text)
        _write_atomic(folder / "spec.json", spec)
        with open(folder / "log", "ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-c", _SUPERVISOR, str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=folder,
                start_new_session=True,  # its own session: an operator restart does not kill it
            )
        self._children[name] = child
        _write_pid(folder, child.pid)
        record = self.read(name)
        assert record is not None
        return record

    def read(self, name: str) -> RunRecord | None:
        """The run's record; None when no run of that name was ever launched."""
        folder = self.folder(name)
        spec = _read_json(folder / "spec.json")
        if spec is None:  # claimed, not yet described; or the launcher died right there
            if not folder.exists():
                return None
            if time.time() - folder.stat().st_mtime < START_GRACE_S:
                return RunRecord(name, PENDING, folder=folder)
            return RunRecord(name, FAILED, message="the run was never started", folder=folder)
        created = str(spec.get("created") or "") or None
        final = self._final(folder, name, created)
        if final is not None:
            return final
        pid = _read_pid(folder)
        if pid is not None and _alive(*pid):
            return RunRecord(name, RUNNING, created=created, folder=folder)
        final = self._final(folder, name, created)  # it may have finished just now
        if final is not None:
            return final
        if pid is None and time.time() - (folder / "spec.json").stat().st_mtime < START_GRACE_S:
            return RunRecord(name, PENDING, created=created, folder=folder)
        what = f"pid {pid[0]}" if pid else "no process was recorded"
        return RunRecord(
            name,
            FAILED,
            message=f"the run's process ended without recording an outcome ({what}): it was "
            "killed or the machine restarted; it is not started again",
            created=created,
            folder=folder,
        )

    def _final(self, folder: Path, name: str, created: str | None) -> RunRecord | None:
        state = _read_json(folder / "state.json")
        if state is None:
            return None
        outputs = state.get("outputs")
        return RunRecord(
            name,
            str(state.get("state") or FAILED),
            message=str(state.get("message") or ""),
            created=created,
            finished=str(state.get("finished") or "") or None,
            outputs=outputs if isinstance(outputs, dict) else {},
            folder=folder,
        )

    def cancel(self, name: str, grace_s: float = 10.0) -> None:
        """Stop the run's whole process group and record CANCELED (unless it already ended)."""
        folder = self.folder(name)
        if not folder.exists() or (folder / "state.json").exists():
            return
        (folder / "cancel").touch()
        pid = _read_pid(folder)
        if pid is not None and _alive(*pid):
            _signal_group(pid[0], signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while _alive(*pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(pid[0], signal.SIGKILL)
        _write_atomic(
            folder / "state.json",
            {"state": CANCELED, "message": "canceled", "finished": now(), "outputs": {}},
            exclusive=True,
        )


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _write_pid(folder: Path, pid: int) -> None:
    path = folder / "pid"
    if not path.exists():
        _write_atomic(path, {"pid": pid, "start": _start_time(pid)})


def _read_pid(folder: Path) -> tuple[int, str | None] | None:
    data = _read_json(folder / "pid")
    if data is None or not isinstance(data.get("pid"), int):
        return None
    start = data.get("start")
    return int(data["pid"]), str(start) if start is not None else None


# --- the supervisor (runs detached, in the operator's interpreter) -------------------------------


def _resolve_python(spec: dict[str, Any]) -> str:
    venv = spec.get("venv")
    if not venv:
        return str(spec["argv"][0])
    root = Path(spec.get("checkout") or "")
    script = root / "hack" / "venv.sh"
    if not script.is_file():
        raise LocalRunError(
            "no interpreter configured and no Slipway checkout to create one with hack/venv.sh; "
            "set pipelinesPython / trainerPython in the operator configuration"
        )
    lock_dir = default_store().parent  # hack/venv.sh's cache folder
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f".venv-{venv['name']}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time; later runs reuse it
        out = subprocess.run(
            [str(script), venv["name"], *(str(root / r) for r in venv["requirements"])],
            check=True,
            stdout=subprocess.PIPE,
            cwd=root,
        )
    return str(Path(out.stdout.decode().strip()) / "bin" / "python")


def _inherited(variable: str) -> bool:
    # The trainer reads SLIPWAY_<OPTION> variables: the operator's own settings must not leak in.
    return not variable.startswith("SLIPWAY_") or variable in ("SLIPWAY_CACHE", "SLIPWAY_PYTHON")


def supervise(folder: Path) -> int:
    """Run the spec in ``folder`` to the end and record its final state."""
    _write_pid(folder, os.getpid())
    spec = _read_json(folder / "spec.json") or {}
    print(f"[slipway] run {spec.get('name')} started {now()}", flush=True)
    state, message = FAILED, ""
    try:
        argv = [_resolve_python(spec), *map(str, spec["argv"][1:])]
        env = {k: v for k, v in os.environ.items() if _inherited(k)}
        env |= {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
        print(f"[slipway] {' '.join(argv)}", flush=True)
        child = subprocess.Popen(argv, env=env, cwd=folder, stdin=subprocess.DEVNULL)
        code = child.wait()
        state = SUCCEEDED if code == 0 else FAILED
        if code != 0:
            message = f"exited with code {code}"
    except (LocalRunError, OSError, KeyError, subprocess.CalledProcessError) as exc:
        message = f"could not start: {exc}"
    result = _read_json(folder / "result.json") or {}
    if (folder / "cancel").exists():
        state, message = CANCELED, "canceled"
    elif state == FAILED:
        sys.stdout.flush()
        detail = failure_summary((folder / "log").read_text(errors="replace"))
        parts = (str(result.get("error") or "").rstrip("."), detail, message)
        message = _ANSI.sub("", "; ".join(p for p in parts if p))
    outputs = result.get("outputs") if isinstance(result.get("outputs"), dict) else {}
    record = {"state": state, "message": message, "finished": now(), "outputs": outputs}
    _write_atomic(folder / "state.json", record, exclusive=True)
    print(f"[slipway] run {spec.get('name')} {state} {now()} {message}", flush=True)
    return 0 if state == SUCCEEDED else 1


def main() -> None:
    raise SystemExit(supervise(Path(sys.argv[1])))
