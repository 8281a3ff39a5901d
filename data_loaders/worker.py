"""Load a study in a separate process, with memory and time limits, so that no file can take
the server (and every user's session on it) down.

`load_isolated(path)` runs `load_study` in a fresh Python process (no copy of the server's
threads or memory). The process gets an address-space limit (RLIMIT_AS) and is
watched: above the memory limit (resident size, polled) or past the time limit it is stopped.
A process that dies while reading a file names that file (readers report each file they start,
`guard.note_reading`); the study is then loaded again without it, and the finding says what
happened and what to do. Only when the study cannot be loaded at all is the result a study with
no tables and that finding (`load_failure(study)` returns it); pages show it like any finding.

Settings (`STUDIES_ROOT/server.toml` `[worker]`, or the environment):

    enabled     true    CART_LOAD_WORKER=0 loads in the server process (no limits)
    memory_mb   6144    CART_WORKER_MEMORY_MB   memory one load may use
    seconds     600     CART_WORKER_SECONDS     time one load may take
    retries     3       how many files may be left out before the study is given up
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_loaders import guard
from data_loaders.errors import Finding, StudyError, ValidationReport

if TYPE_CHECKING:
    from data_loaders.study import Study

__all__ = ["WorkerSettings", "worker_settings", "load_isolated", "load_failure",
           "LOAD_FAILED"]

LOAD_FAILED = "could not be loaded"
_ROOT = Path(__file__).resolve().parent.parent
_POLL = 0.1


@dataclass(frozen=True)
class WorkerSettings:
    enabled: bool = True
    memory_mb: int = 6144
    seconds: float = 600
    retries: int = 3


def worker_settings(study_dir: str | Path | None = None) -> WorkerSettings:
    """Defaults, then server.toml [worker], then CART_LOAD_WORKER / CART_WORKER_MEMORY_MB /
    CART_WORKER_SECONDS from the environment."""
    cfg = guard.server_config(study_dir).get("worker", {})
    cfg = cfg if isinstance(cfg, Mapping) else {}
    base = WorkerSettings()
    enabled = bool(cfg.get("enabled", base.enabled))
    memory = _number(cfg.get("memory_mb"), base.memory_mb)
    seconds = _number(cfg.get("seconds"), base.seconds)
    retries = cfg.get("retries", base.retries)
    retries = retries if isinstance(retries, int) and not isinstance(retries, bool) \
        else base.retries
    flag = os.environ.get("CART_LOAD_WORKER", "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        enabled = False
    elif flag in ("1", "true", "yes", "on"):
        enabled = True
    memory = _number(os.environ.get("CART_WORKER_MEMORY_MB"), memory)
    seconds = _number(os.environ.get("CART_WORKER_SECONDS"), seconds)
    return WorkerSettings(enabled, int(memory), float(seconds), max(0, retries))


def _number(value: Any, default: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return v if v > 0 else default


# ---- the child ---------------------------------------------------------------------------------
def _child_main() -> None:
    """Entry of the worker process: `python -c "...; _child_main()" FD` with the request (path,
    files to skip, memory limit) as one pickled message on that pipe's first line."""
    import sys

    conn = Connection(int(sys.argv[1]))
    path, skip, memory_bytes = conn.recv()
    try:
        # address space well above the watched resident limit: the watchdog names the file;
        # this stops a single huge allocation (a sheet "of 549 GB") at once. The headroom is
        # for what the libraries reserve without using (thread stacks, allocator arenas:
        # about 1.75 GB of address space for a 260 MB resident load of the demo)
        cap = memory_bytes + 2 * 1024**3
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ValueError, OSError):
        pass
    guard.on_file(lambda name: conn.send(("file", name)))
    try:
        from data_loaders.loader import load_study

        with guard.skipping(skip):
            study = load_study(path)
        conn.send(("ok", study))
    except StudyError as err:
        conn.send(("study_error", (str(err), err.problem, err.file, err.fix)))
    except MemoryError:
        conn.send(("memory", None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as a finding
        conn.send(("crash", f"{type(exc).__name__}: {exc}"[:300] + "\n"
                   + traceback.format_exc(limit=3)[-1200:]))
    finally:
        conn.close()


# ---- the parent --------------------------------------------------------------------------------
@dataclass
class _Outcome:
    study: Any = None
    error: StudyError | None = None
    why: str = ""          # "memory", "time", "crash"
    detail: str = ""
    file: str | None = None


def _run(path: Path, skip: dict[str, str], settings: WorkerSettings) -> _Outcome:
    # a fresh interpreter (not multiprocessing: that would re-run the caller's __main__, e.g.
    # streamlit's launcher) on one socket pair: request in, progress and result out
    here, there = socket.socketpair()
    parent, child = Connection(here.detach()), Connection(there.detach())
    limit = settings.memory_mb * 1024 * 1024
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from data_loaders.worker import _child_main; _child_main()",
         str(child.fileno())], pass_fds=(child.fileno(),), cwd=_ROOT, env=env,
        stdin=subprocess.DEVNULL)
    child.close()
    parent.send((str(path), skip, limit))
    out = _Outcome()
    deadline = time.monotonic() + settings.seconds
    try:
        import psutil

        watched = psutil.Process(proc.pid)
    except Exception:  # noqa: BLE001 - no psutil or the process is gone: RLIMIT_AS still holds
        watched = None
    try:
        while True:
            if parent.poll(_POLL):
                try:
                    kind, payload = parent.recv()
                except (EOFError, OSError):   # the process died: its exit code says how
                    try:
                        proc.wait(5)
                    except subprocess.TimeoutExpired:
                        pass
                    out.why, out.detail = _died(proc.returncode)
                    break
                except MemoryError:
                    out.why = "memory"
                    break
                if kind == "file":
                    out.file = payload
                    continue
                if kind == "ok":
                    out.study = payload
                elif kind == "study_error":
                    text, problem, file, fix = payload
                    out.error = StudyError(problem, file=file, fix=fix)
                elif kind == "memory":
                    out.why = "memory"
                else:
                    out.why, out.detail = "crash", str(payload)
                break
            if proc.poll() is not None and not parent.poll(0):
                out.why, out.detail = _died(proc.returncode)
                break
            if time.monotonic() > deadline:
                out.why = "time"
                break
            if watched is not None and _rss(watched) > limit:
                out.why = "memory"
                break
    finally:
        parent.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    return out


def _died(code: int | None) -> tuple[str, str]:
    """Why a worker ended without an answer: an allocation refused under RLIMIT_AS aborts
    (SIGABRT, from Rust and C++ code) or raises; SIGKILL is the kernel's out-of-memory killer."""
    if code in (-signal.SIGABRT, -signal.SIGKILL, 128 + signal.SIGABRT, 128 + signal.SIGKILL):
        return "memory", f"exit code {code}"
    return "crash", f"exit code {code}"


def _rss(proc: Any) -> int:
    try:
        return int(proc.memory_info().rss)
    except Exception:  # noqa: BLE001 - the process just ended
        return 0


def _reason(out: _Outcome, settings: WorkerSettings) -> tuple[str, str]:
    """(what happened, what to do) for a load that died."""
    if out.why == "memory":
        return (f"loading it ran out of memory (the limit for loading a study is "
                f"{settings.memory_mb:,} MB)",
                "split the file into smaller ones or keep only the columns the study needs; "
                "the server's administrator can raise [worker] memory_mb in server.toml")
    if out.why == "time":
        return (f"loading it took too long (the limit is {settings.seconds:g} s)",
                "split the file into smaller ones; the server's administrator can raise "
                "[worker] seconds in server.toml")
    return (f"the loader stopped on it ({out.detail.splitlines()[0] if out.detail else 'crash'})",
            "check that the file is complete and re-export it")


def load_isolated(path: str | Path, *, settings: WorkerSettings | None = None) -> Any:
    """`load_study(path)` in a worker process with memory and time limits (see the module
    docstring). Raises `StudyError` only where `load_study` would (no study folder)."""
    from data_loaders.loader import load_study

    root = Path(path).expanduser()
    settings = settings or worker_settings(root)
    if not settings.enabled:
        return load_study(root)
    skip: dict[str, str] = {}
    notes: list[tuple[str, str, str]] = []
    last: _Outcome | None = None
    for _ in range(settings.retries + 1):
        out = _run(root, skip, settings)
        if out.error is not None:
            raise out.error
        if out.study is not None:
            return out.study
        last = out
        problem, fix = _reason(out, settings)
        if out.file is None or out.file in skip:
            break
        skip[out.file] = problem
        notes.append((out.file, problem, fix))
    assert last is not None
    problem, fix = _reason(last, settings)
    return _failed_study(root, last.file, problem, fix, notes)


def _failed_study(root: Path, file: str | None, problem: str, fix: str,
                  notes: list[tuple[str, str, str]]) -> Any:
    from data_loaders.analytes import catalogue_with
    from data_loaders.study import Study, fingerprint

    report = ValidationReport()
    for f, p, x in notes:
        if f != file:
            report.add("error", "study", f, p, fix=x)
    where = f"; it was reading {file}" if file else ""
    report.add("error", "study", file or root.name, f"the study {LOAD_FAILED}: {problem}{where}",
               fix=fix)
    resolved = root.resolve()
    return Study(path=resolved, study_id=resolved.name, title=resolved.name, config={},
                 catalogue=catalogue_with({}), report=report,
                 fingerprint=fingerprint(resolved) if resolved.is_dir() else "")


def load_failure(study: Study) -> Finding | None:
    """The finding of a study that could not be loaded at all (None for a loaded study)."""
    for f in study.report.errors:
        if f.table == "study" and f.problem.startswith(f"the study {LOAD_FAILED}"):
            return f
    return None
