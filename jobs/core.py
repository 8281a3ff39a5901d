"""Long computations as jobs, keyed by a hash of their inputs, shared by every session and
every app process through the study's on-disk cache.

`submit(fn, *args, key_parts=..., study=..., **kwargs)` returns a `JobHandle` at once. The
first request for a key runs `fn(*args, **kwargs)` on the Dask cluster (jobs/cluster.py); a
second request for the same key, from another session or another app process, waits for the
first instead of computing again:

- in one process, requests for a key share one job (the same handle state);
- across processes, the process that runs a job holds an exclusive lock (`fcntl.flock`) on
  `<cache>/jobs/<key>.lock` while it runs and writes its progress next to it
  (`<key>.json`); another process finding the lock taken waits, showing that progress, and
  reads the result when it appears. A lock dies with its process, so a crashed app never
  leaves a job marked as running for ever: the next request takes the lock and runs it;
- a rerun (`rerun=True`, or `force=True` among the arguments) leaves a request
  `<key>.rerun-<token>` while it waits; a forced run lists in its status record the requests
  it found before computing, and a waiting rerun takes another process's result only when
  that record lists its token (a result not forced, or forced before the request, is
  computed again; no clocks are compared, so hosts sharing the cache need not agree on
  the time);
- on one Dask scheduler shared by several app hosts, the task key is deterministic
  (`<name>-<key>-<attempt>`), so the scheduler itself runs it once.

The result is pickled to `<cache>/jobs/<key>.pkl` (the study's `.cache` folder, or the
service user's cache when the study folder is read-only: data_loaders.single_cell.cache), so
a later request, in any session or process, is answered from disk. The cache folder is
written only by this service and the study's own CLI runs; results are read from nowhere
else.

Inside a job, `progress(fraction, message)` reports how far it got (0 to 1; pass it as the
computation's progress callback, `step_progress` for (done, total, label) callbacks) and
raises `JobCancelled` once the job was cancelled, so a cancelled job stops at its next
report. On Dask the report is a worker event (`log_event`, pushed to the requesting process
through `subscribe_topic`), the cancellation the task's own state on its worker; a job that never reports cannot be stopped before it ends, and its
result is then thrown away.

A worker that dies (out of memory above its limit, killed) is restarted by its nanny and the
scheduler runs the job again on a live worker, up to `distributed.scheduler.allowed-failures`
(3) times; after that the job fails with a message saying so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from jobs.keys import job_key
from jobs.settings import JobSettings, job_settings

if TYPE_CHECKING:
    from data_loaders.study import Study

__all__ = ["submit", "find", "cached_result", "JobHandle", "JobProgress", "JobCancelled",
           "JobFailed", "State", "progress", "step_progress", "wait", "job_folder",
           "StudyRef", "reference", "materialise", "watching"]

State = Literal["queued", "running", "waiting", "done", "error", "cancelled"]
_FINISHED = ("done", "error", "cancelled")
_TICK = 0.25                 # how often a running job is looked at (s)
_REPORT_EVERY = 0.2          # a worker sends at most this many progress events per second


class JobCancelled(Exception):
    """The job was cancelled (raised inside it at its next progress report, and by
    `JobHandle.result`)."""


class JobFailed(RuntimeError):
    """The job raised an error or its workers died; the message says which and why."""


@dataclass(frozen=True)
class JobProgress:
    fraction: float
    message: str


# ---- where results live -----------------------------------------------------------------------
def job_folder(study: Study | Path | str) -> Path:
    """`<cache>/jobs/` of a study (its own .cache when writable, else the per-user cache)."""
    from data_loaders.single_cell.cache import cache_location

    path = study if isinstance(study, (str, Path)) else study.path
    folder = cache_location(path).folder / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write_json(path: Path, record: Mapping[str, Any]) -> None:
    from data_loaders.single_cell.cache import atomic_write

    try:
        atomic_write(path, json.dumps(record).encode())
    except OSError:
        pass            # a status record is a courtesy to other processes; the job goes on


def _read_json(path: Path) -> dict[str, Any]:
    try:
        got = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return got if isinstance(got, dict) else {}


def _try_lock(path: Path) -> int | None:
    """An exclusive lock on `path` (its file descriptor), or None when another process holds
    it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


_LOADED: OrderedDict[tuple[Path, int, int, int], Any] = OrderedDict()
"""Results read back from disk, newest last, keyed by the file's path, inode, modification
time (ns) and size: a result another process wrote again (a rerun) is read again."""
_LOADED_LOCK = threading.Lock()
_KEEP_LOADED = 8


def _file_id(path: Path) -> tuple[Path, int, int, int]:
    st = path.stat()
    return (path, st.st_ino, st.st_mtime_ns, st.st_size)


def _load_result(path: Path) -> Any:
    ident = _file_id(path)
    with _LOADED_LOCK:
        if ident in _LOADED:
            _LOADED.move_to_end(ident)
            return _LOADED[ident]
    with path.open("rb") as fh:
        value = pickle.load(fh)    # written by this service into its own cache only
    _remember(ident, value)
    return value


def _remember(ident: tuple[Path, int, int, int], value: Any) -> None:
    with _LOADED_LOCK:
        for old in [k for k in _LOADED if k[0] == ident[0] and k != ident]:
            del _LOADED[old]           # an older version of the same result
        _LOADED[ident] = value
        _LOADED.move_to_end(ident)
        while len(_LOADED) > _KEEP_LOADED:
            _LOADED.popitem(last=False)


def _save_result(path: Path, value: Any) -> None:
    from data_loaders.single_cell.cache import atomic_write

    atomic_write(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


# ---- inside a job -----------------------------------------------------------------------------
_CURRENT = threading.local()


@dataclass(frozen=True)
class StudyRef:
    """A study passed to a worker: its folder and the fingerprint it had when the job was
    asked for. The worker loads it (once per worker process) and checks the fingerprint."""

    path: str
    fingerprint: str

    @property
    def cache_key(self) -> str:
        return f"{Path(self.path)}|{self.fingerprint}"


_STUDIES: OrderedDict[tuple[str, str], Any] = OrderedDict()


def _open_study(ref: StudyRef) -> Any:
    got = _STUDIES.get((ref.path, ref.fingerprint))
    if got is not None:
        return got
    from data_loaders.loader import load_study

    study = load_study(ref.path)
    if ref.fingerprint.endswith("+deid"):
        from data_loaders.deid import deidentify

        study = deidentify(study)
    if study.fingerprint != ref.fingerprint:
        raise JobFailed(f"the study {ref.path} changed on disk after this job was asked for; "
                        "reload the page to run it on the new files")
    _STUDIES[(ref.path, ref.fingerprint)] = study
    while len(_STUDIES) > 2:
        _STUDIES.popitem(last=False)
    return study


def materialise(value: Any) -> Any:
    """`value` with each StudyRef in it (in tuples and lists too) replaced by its study,
    loaded once per process."""
    if isinstance(value, StudyRef):
        return _open_study(value)
    if isinstance(value, tuple):
        return tuple(materialise(v) for v in value)
    if isinstance(value, list):
        return [materialise(v) for v in value]
    return value


def reference(value: Any) -> Any:
    """`value` with each Study in it (in tuples and lists too) replaced by its StudyRef: what
    is sent to a worker."""
    from data_loaders.study import Study

    if isinstance(value, Study):
        return StudyRef(str(value.path), value.fingerprint)
    if isinstance(value, tuple):
        return tuple(reference(v) for v in value)
    if isinstance(value, list):
        return [reference(v) for v in value]
    return value


def _execute(key: str, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    """The task run on a Dask worker: studies loaded from their references, progress and
    cancellation wired to this job."""
    try:
        from distributed import get_worker
        from distributed.worker import thread_state

        worker, task = get_worker(), thread_state.key
    except (ImportError, ValueError, AttributeError):
        worker, task = None, None
    _CURRENT.dask = (key, worker, task)
    _CURRENT.last = 0.0
    try:
        args = materialise(args)
        kwargs = {k: materialise(v) for k, v in kwargs.items()}
        return fn(*args, **kwargs)
    finally:
        _CURRENT.dask = None


def _topic(key: str) -> str:
    return f"cart-job-{key}"


def progress(fraction: float, message: str = "") -> None:
    """Report how far the running job is (0 to 1) and what it is doing; raises `JobCancelled`
    when the job was cancelled. Outside a job it does nothing, so a computation can take it
    as its progress callback whether or not it runs as a job."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    local = getattr(_CURRENT, "job", None)
    if local is not None:                       # inline: the job record is in this process
        if local.cancel_requested:
            raise JobCancelled(local.name)
        local.fraction, local.message = fraction, str(message)
        _tell(local)
        now = time.monotonic()
        if now - getattr(_CURRENT, "last", 0.0) >= 1.0:     # for processes waiting for it
            _CURRENT.last = now
            local.write_status("running")
        return
    here = getattr(_CURRENT, "dask", None)
    if not here:
        return
    key, worker, task = here
    if worker is None:
        return
    ts = worker.state.tasks.get(task) if task is not None else None
    if task is not None and (ts is None or ts.state in ("cancelled", "released", "forgotten")):
        raise JobCancelled(key)
    now = time.monotonic()
    if now - getattr(_CURRENT, "last", 0.0) >= _REPORT_EVERY or fraction >= 1.0:
        _CURRENT.last = now
        worker.log_event(_topic(key), {"fraction": fraction, "message": str(message)})


def step_progress(done: int, total: int, label: str = "") -> None:
    """`progress` for callbacks that count steps: (done, total, label)."""
    progress(done / total if total else 1.0,
             f"{done:,} of {total:,}" + (f": {label}" if label else ""))


@contextlib.contextmanager
def watching(on_progress: Callable[[JobProgress], None]) -> Iterator[None]:
    """Call `on_progress` with the progress of the jobs this thread runs inline or waits
    for inside `submit` (in inline mode `submit` returns only once the job ended, so the
    command line's bar is fed from here; on a cluster `wait` feeds it)."""
    before = getattr(_CURRENT, "watch", None)
    _CURRENT.watch = on_progress
    try:
        yield
    finally:
        _CURRENT.watch = before


def _tell(job: _Job) -> None:
    watch = getattr(_CURRENT, "watch", None)
    if watch is not None:
        watch(JobProgress(job.fraction, job.message))


# ---- the job in this process --------------------------------------------------------------------
class _Job:
    def __init__(self, key: str, name: str, folder: Path, call: tuple | None,
                 settings: JobSettings) -> None:
        self.key, self.name, self.folder, self.call, self.settings = \
            key, name, folder, call, settings
        self.state: State = "queued"
        self.fraction, self.message, self.error = 0.0, "", ""
        self.cancel_requested = False
        self.finished = threading.Event()
        self.attempt = 0
        self.fresh = False          # run even when a result is stored (rerun)
        self.started = time.time()  # for people reading the status record, never compared
        self.token = ""             # a rerun's request, left in the folder while it waits
        self.answers: tuple[str, ...] = ()   # requests this run started after (when fresh)

    @property
    def result_path(self) -> Path:
        return self.folder / f"{self.key}.pkl"

    @property
    def status_path(self) -> Path:
        return self.folder / f"{self.key}.json"

    @property
    def lock_path(self) -> Path:
        return self.folder / f"{self.key}.lock"

    def request_path(self, token: str) -> Path:
        return self.folder / f"{self.key}.rerun-{token}"

    def ask(self) -> None:
        """A rerun: leave a request in the folder, which every forced run that starts later
        (in any process) lists in its status record as answered."""
        self.token = uuid.uuid4().hex
        with contextlib.suppress(OSError):
            self.request_path(self.token).touch()

    def take_requests(self) -> None:
        """Before a forced run computes: the reruns asked for so far, which it answers."""
        try:
            found = {p.name.rsplit(".rerun-", 1)[1]
                     for p in self.folder.glob(f"{self.key}.rerun-*")}
        except OSError:
            found = set()
        self.answers = tuple(sorted(found | ({self.token} if self.token else set())))

    def withdraw(self) -> None:
        if self.token:
            with contextlib.suppress(OSError):
                self.request_path(self.token).unlink()

    def stored(self) -> bool:
        """Whether a result this job may use is on disk: any, or for a rerun only one whose
        writer was itself forced and started computing after this rerun was asked for (its
        status record lists this rerun's request). No clocks are compared: a cache shared
        by several hosts over NFS has as many clocks."""
        if not self.result_path.is_file():
            return False
        if not self.fresh:
            return True
        seen = _read_json(self.status_path)
        answers = seen.get("answers")
        return (seen.get("state") == "done" and seen.get("fresh") is True
                and isinstance(answers, list) and self.token in answers)

    def write_status(self, state: str, **extra: Any) -> None:
        _write_json(self.status_path, {"state": state, "name": self.name, "pid": os.getpid(),
                                       "fraction": self.fraction, "message": self.message,
                                       "fresh": self.fresh, "answers": list(self.answers),
                                       "started": self.started, "updated": time.time(),
                                       **extra})

    def finish(self, state: State, *, error: str = "") -> None:
        self.state, self.error = state, error
        if state == "done":
            self.fraction = 1.0
        self.finished.set()


_ACTIVE: dict[str, _Job] = {}
_ACTIVE_LOCK = threading.Lock()
_FOLDERS: dict[str, Path] = {}
_ATTEMPTS: dict[str, int] = {}      # jobs made per key in this process: the Dask key's suffix


def _drive(job: _Job) -> None:
    """Run `job` (or wait for the process that runs it) to its end."""
    fd: int | None = None
    if job.fresh:
        job.ask()
    try:
        while True:
            if job.stored():
                job.finish("done")
                return
            fd = _try_lock(job.lock_path)
            if fd is not None:
                break
            # another process runs it: follow its progress until its lock is released
            job.state = "waiting"
            seen = _read_json(job.status_path)
            job.fraction = float(seen.get("fraction", job.fraction) or 0.0)
            job.message = str(seen.get("message", "") or "running in another app process")
            _tell(job)
            if job.cancel_requested:
                job.finish("cancelled")
                return
            time.sleep(_TICK)
        if job.stored():    # finished since the check (by the process it waited for)
            job.finish("done")
            return
        job.state, job.message = "running", "starting"
        if job.fresh:
            job.take_requests()
        job.write_status("running")
        value = _run_inline(job) if job.settings.mode == "inline" else _run_dask(job)
        _save_result(job.result_path, value)
        with contextlib.suppress(OSError):
            _remember(_file_id(job.result_path), value)
        job.write_status("done")
        job.finish("done")
    except JobCancelled:
        job.write_status("cancelled")
        job.finish("cancelled")
    except Exception as exc:  # noqa: BLE001 - the job's error is shown to whoever waits for it
        text = _explain(exc, job)
        job.write_status("error", error=text)
        job.finish("error", error=text)
    finally:
        _unlock(fd)
        job.withdraw()
        if job.state == "done":    # the disk holds it now; failed jobs stay until a rerun
            with _ACTIVE_LOCK:
                if _ACTIVE.get(job.key) is job:
                    del _ACTIVE[job.key]


def _run_inline(job: _Job) -> Any:
    assert job.call is not None
    fn, args, kwargs = job.call
    _CURRENT.job = job
    try:
        return fn(*args, **kwargs)
    finally:
        _CURRENT.job = None


def _run_dask(job: _Job) -> Any:
    from jobs.cluster import client as dask_client

    assert job.call is not None
    fn, args, kwargs = job.call
    client = dask_client(job.settings)
    topic = _topic(job.key)

    def on_progress(event: tuple[float, Any]) -> None:   # pushed by the scheduler
        msg = event[1] if isinstance(event, tuple) and len(event) == 2 else {}
        if isinstance(msg, dict):
            job.fraction = float(msg.get("fraction", job.fraction))
            job.message = str(msg.get("message", job.message))

    client.subscribe_topic(topic, on_progress)
    seen = False
    fut = client.submit(_execute, job.key, fn, reference(args),
                        {k: reference(v) for k, v in kwargs.items()},
                        key=f"{job.name.rsplit('.', 1)[-1]}-{job.key}-{job.attempt}",
                        pure=False, retries=job.settings.retries)
    job.message = "queued on the cluster"
    written = 0.0
    try:
        while True:
            if not fut.done():
                time.sleep(_TICK)
            if job.cancel_requested:
                fut.cancel()
                raise JobCancelled(job.name)
            seen = seen or job.fraction > 0 or job.message not in ("queued on the cluster",
                                                                    "starting")
            if not seen and fut.status == "pending" and _is_processing(client, fut.key):
                job.message, seen = "running", True
            if time.monotonic() - written > 1.0:
                written = time.monotonic()
                job.write_status("running")
            if fut.done():
                break
        if fut.status == "cancelled":
            raise JobCancelled(job.name)
        return fut.result()
    finally:
        fut.release()
        with contextlib.suppress(ValueError, KeyError):
            client.unsubscribe_topic(topic)


def _is_processing(client: Any, key: str) -> bool:
    try:
        return any(key in keys for keys in client.processing().values())
    except Exception:  # noqa: BLE001 - only the wording of the message depends on it
        return False


def _explain(exc: BaseException, job: _Job) -> str:
    kind = type(exc).__name__
    if kind == "KilledWorker":
        limit = job.settings.memory_limit
        limit = "the machine's memory divided by the workers" if limit == "auto" else limit
        return (f"{job.name}: the worker running it died each time it was tried (out of "
                f"memory above the limit per worker, {limit}, or killed); the server's "
                "administrator can raise [jobs] memory_limit in server.toml or run fewer "
                "workers")
    if isinstance(exc, (JobFailed, ValueError)):
        # ValueError is how the computations say their input does not allow them ("DESeq2
        # needs at least 2 patients in each group"): the message is for the user as it is
        return str(exc)[:600]
    return f"{job.name} failed: {kind}: {str(exc)[:400]}"


# ---- the handle ---------------------------------------------------------------------------------
class JobHandle:
    """A job as its requester sees it (cheap to make; pages make one per rerun)."""

    def __init__(self, job: _Job) -> None:
        self._job = job

    @property
    def key(self) -> str:
        return self._job.key

    @property
    def name(self) -> str:
        return self._job.name

    def status(self) -> State:
        """queued, running, waiting (for another app process), done, error or cancelled."""
        return self._job.state

    def done(self) -> bool:
        return self._job.state in _FINISHED

    def progress(self) -> JobProgress:
        return JobProgress(self._job.fraction, self._job.message)

    def error(self) -> str:
        return self._job.error

    def wait(self, timeout: float | None = None) -> State:
        """Block until the job ends (or `timeout` seconds pass); returns its state."""
        self._job.finished.wait(timeout)
        return self._job.state

    def result(self, timeout: float | None = None) -> Any:
        """The job's result (waiting for it); `JobFailed` or `JobCancelled` when it has
        none, TimeoutError when `timeout` passes first."""
        if not self._job.finished.wait(timeout):
            raise TimeoutError(f"{self.name} has not finished")
        job = self._job
        if job.state == "cancelled":
            raise JobCancelled(job.name)
        if job.state == "error":
            raise JobFailed(job.error)
        return _load_result(job.result_path)

    def cancel(self) -> None:
        """Stop the job (for every session waiting for it); a job waited for in another
        process goes on there, only this process stops waiting."""
        self._job.cancel_requested = True

    def __repr__(self) -> str:
        return f"JobHandle({self.name}, {self.key[:8]}, {self.status()})"


def _describe(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _study_dir(study: Study | Path | str) -> Path:
    return Path(study) if isinstance(study, (str, Path)) else study.path


def submit(fn: Callable[..., Any], *args: Any, key_parts: Any = (), study: Study | Path | str,
           name: str | None = None, rerun: bool = False,
           settings: JobSettings | None = None, **kwargs: Any) -> JobHandle:
    """Run `fn(*args, **kwargs)` as a job (see the module docstring) and return its handle.

    `fn` must be a module-level function (it is sent to a worker by reference); a `Study`
    among the arguments is sent as its folder and fingerprint and loaded on the worker.
    `key_parts` add to the key what the arguments do not show. `study` chooses the cache
    folder. A job of this key that failed or was cancelled in this process is returned as it
    is unless `rerun`, which also computes again a result already stored (a running job of
    this key is joined, never started twice). `force=True` among the arguments (a
    computation asked to ignore its own cache) is a rerun of the same key (jobs/keys.py)."""
    rerun = rerun or kwargs.get("force") is True
    key = job_key(fn, args, kwargs, key_parts=key_parts)
    folder = job_folder(study)
    _FOLDERS[key] = folder
    with _ACTIVE_LOCK:
        job = _ACTIVE.get(key)
        if job is not None and (job.state not in _FINISHED or not rerun):
            return JobHandle(job)
        job = _Job(key, name or _describe(fn), folder, (fn, args, kwargs),
                   settings or job_settings(_study_dir(study)))
        _ATTEMPTS[key] = job.attempt = _ATTEMPTS.get(key, 0) + 1
        job.fresh = rerun
        if job.result_path.is_file() and not rerun:
            job.finish("done")
            return JobHandle(job)
        _ACTIVE[key] = job
    if job.settings.mode == "inline":
        _drive(job)
    else:
        threading.Thread(target=_drive, args=(job,), name=f"job-{key[:8]}",
                         daemon=True).start()
    return JobHandle(job)


def find(fn: Callable[..., Any], *args: Any, key_parts: Any = (), study: Study | Path | str,
         **kwargs: Any) -> JobHandle | None:
    """The handle of `fn(*args, **kwargs)` when it runs in this process or its result is on
    disk; None when nobody asked for it yet (nothing is started)."""
    key = job_key(fn, args, kwargs, key_parts=key_parts)
    with _ACTIVE_LOCK:
        job = _ACTIVE.get(key)
    if job is not None:
        return JobHandle(job)
    folder = job_folder(study)
    done = _Job(key, _describe(fn), folder, None, job_settings(_study_dir(study)))
    if done.result_path.is_file():
        done.finish("done")
        return JobHandle(done)
    return None


def cached_result(key: str, *, study: Study | Path | str | None = None) -> Any:
    """The stored result of the finished job `key`; KeyError when there is none. `study`
    names the cache folder (a key submitted in this process is found without it)."""
    folder = job_folder(study) if study is not None else _FOLDERS.get(key)
    if folder is None or not (folder / f"{key}.pkl").is_file():
        raise KeyError(key)
    return _load_result(folder / f"{key}.pkl")


def wait(handle: JobHandle, *, on_progress: Callable[[JobProgress], None] | None = None,
         every: float = 0.5) -> Any:
    """Wait for `handle`'s result, calling `on_progress` as it changes (the CLI's bar)."""
    last: JobProgress | None = None
    while not handle.done():
        now = handle.progress()
        if on_progress is not None and now != last:
            on_progress(now)
            last = now
        handle.wait(every)
    if on_progress is not None and handle.status() == "done":
        on_progress(JobProgress(1.0, "done"))
    return handle.result()


@contextlib.contextmanager
def _forget_all() -> Iterator[None]:
    """Tests: forget this process's jobs and loaded results before and after."""
    with _ACTIVE_LOCK:
        _ACTIVE.clear()
    with _LOADED_LOCK:
        _LOADED.clear()
    try:
        yield
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.clear()
        with _LOADED_LOCK:
            _LOADED.clear()
