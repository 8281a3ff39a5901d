"""jobs/: keys, settings, one computation per key, and jobs on a real Dask LocalCluster (two
worker processes): a job runs, its result is cached and reused by a second session and by
another process, a cancelled job stops, a worker that dies is retried."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import polars as pl
import pytest

import jobs
from jobs import core
from jobs.cluster import client, shutdown
from jobs.locks import single_flight
from jobs.settings import JobSettings, job_settings

ROOT = Path(__file__).resolve().parent.parent


# ---- tasks (module level: workers import them by name) ------------------------------------------
def _runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.is_file() else 0


def _note(marker: Path) -> None:
    with marker.open("a") as fh:
        fh.write(f"{os.getpid()}\n")


def square_slowly(x: int, *, marker: str, steps: int = 4, pause: float = 0.05,
                  progress: object = None) -> int:
    _note(Path(marker))
    for i in range(steps):
        time.sleep(pause)
        if callable(progress):
            progress((i + 1) / steps, f"step {i + 1}")
    return x * x


def count_until_cancelled(*, marker: str, progress: object = None) -> str:
    for i in range(2000):
        _note(Path(marker))
        if callable(progress):
            progress(i / 2000, f"beat {i}")
        time.sleep(0.02)
    return "ran to the end"


def die_first_time(*, marker: str) -> str:
    m = Path(marker)
    first = not m.is_file()
    _note(m)
    if first:
        os._exit(1)           # the worker process dies mid-task
    return f"survived on attempt {_runs(m)}"


def always_die(*, marker: str) -> str:
    _note(Path(marker))
    os._exit(1)


def raise_error(*, n: int) -> int:
    raise ValueError(f"no such thing as {n}")


def patient_count(study: object) -> int:
    return int(study.patients.height)    # type: ignore[attr-defined]


# ---- fast: keys, settings, single flight ----------------------------------------------------------
def test_key_follows_content_not_identity():
    a = pl.DataFrame({"x": [1, 2, 3]})
    b = pl.DataFrame({"x": [1, 2, 3]})
    k1 = jobs.job_key(square_slowly, (a,), {"marker": "m"})
    assert k1 == jobs.job_key(square_slowly, (b,), {"marker": "m"})
    assert k1 != jobs.job_key(square_slowly, (b.with_columns(pl.lit(4).alias("x")),),
                              {"marker": "m"})
    assert k1 != jobs.job_key(square_slowly, (a,), {"marker": "m"}, key_parts=("v2",))
    assert k1 != jobs.job_key(count_until_cancelled, (a,), {"marker": "m"})
    # the progress callback does not change what is computed
    assert k1 == jobs.job_key(square_slowly, (a,), {"marker": "m", "progress": jobs.progress})


def test_settings_from_environment_and_server_toml(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "s").mkdir(parents=True)
    (root / "server.toml").write_text('[jobs]\nworkers = 6\nmemory_limit = "8GiB"\n'
                                      'scheduler = "tcp://10.0.0.5:8786"\n')
    monkeypatch.setenv("STUDIES_ROOT", str(root))
    for var in ("DASK_SCHEDULER_ADDRESS", "CART_JOBS", "CART_JOB_WORKERS", "CART_JOB_MEMORY"):
        monkeypatch.delenv(var, raising=False)
    s = job_settings(root / "s")
    assert (s.workers, s.memory_limit, s.scheduler, s.mode) == \
        (6, "8GiB", "tcp://10.0.0.5:8786", "dask")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://hpc-login:8786")
    monkeypatch.setenv("CART_JOB_WORKERS", "3")
    assert job_settings(root / "s").scheduler == "tcp://hpc-login:8786"
    assert job_settings(root / "s").workers == 3
    monkeypatch.setenv("CART_JOBS", "threads")
    with pytest.raises(ValueError, match="CART_JOBS"):
        job_settings(root / "s")


def test_single_flight_computes_once_for_concurrent_callers():
    calls = []
    gate = threading.Event()

    def slow() -> int:
        calls.append(1)
        gate.wait(5)
        return 42

    out: list[int] = []
    threads = [threading.Thread(target=lambda: out.append(single_flight("k", slow)))
               for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join(5)
    assert out == [42] * 8 and len(calls) == 1
    # the key is free again afterwards: a later call computes afresh
    assert single_flight("k", lambda: 7) == 7


def test_single_flight_shares_the_error():
    def boom() -> int:
        time.sleep(0.2)
        raise RuntimeError("bad input")

    errors: list[str] = []

    def call() -> None:
        try:
            single_flight("e", boom)
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert errors == ["bad input"] * 3


def test_inline_mode_runs_reports_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CART_JOBS", "inline")
    marker = tmp_path / "runs"
    with core._forget_all():
        h = jobs.submit(square_slowly, 5, marker=str(marker), progress=jobs.progress,
                        study=tmp_path)
        assert h.status() == "done" and h.result() == 25 and h.progress().fraction == 1.0
        with core._forget_all():       # a new process: answered from disk
            again = jobs.submit(square_slowly, 5, marker=str(marker), progress=jobs.progress,
                                study=tmp_path)
            assert again.result() == 25 and jobs.cached_result(again.key, study=tmp_path) == 25
        bad = jobs.submit(raise_error, n=3, study=tmp_path)
        assert bad.status() == "error" and "no such thing as 3" in bad.error()
        with pytest.raises(jobs.JobFailed, match="ValueError"):
            bad.result()
    assert _runs(marker) == 1
    with pytest.raises(KeyError):
        jobs.cached_result("0" * 32, study=tmp_path)


# ---- a real LocalCluster ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    saved = {k: os.environ.pop(k, None) for k in ("CART_JOBS", "DASK_SCHEDULER_ADDRESS")}
    shutdown()
    c = client(JobSettings(workers=2, memory_limit="1GiB"))
    c.wait_for_workers(2, timeout=120)
    yield c
    shutdown()
    for k, v in saved.items():
        if v is not None:
            os.environ[k] = v


@pytest.fixture
def fresh():
    with core._forget_all():
        yield


@pytest.mark.slow
def test_job_runs_on_a_worker_with_progress(cluster, fresh, tmp_path):
    marker = tmp_path / "runs"
    h = jobs.submit(square_slowly, 7, marker=str(marker), steps=10, pause=0.1,
                    progress=jobs.progress, study=tmp_path)
    seen = []
    assert jobs.wait(h, on_progress=seen.append) == 49
    assert h.status() == "done"
    assert any(0 < p.fraction < 1 and p.message.startswith("step") for p in seen), seen
    # it ran in a worker process, not here
    assert int(marker.read_text().split()[0]) != os.getpid()
    assert (tmp_path / ".cache" / "jobs" / f"{h.key}.pkl").is_file()


@pytest.mark.slow
def test_a_study_argument_is_loaded_on_the_worker(cluster, fresh, write_study):
    from data_loaders import load_study

    study = load_study(write_study())
    h = jobs.submit(patient_count, study, study=study)
    assert h.result(timeout=120) == 2


@pytest.mark.slow
def test_second_session_waits_for_the_first_and_reuses_the_result(cluster, fresh, tmp_path):
    marker = tmp_path / "runs"
    first = jobs.submit(square_slowly, 9, marker=str(marker), steps=20, pause=0.05,
                        progress=jobs.progress, study=tmp_path)
    second = jobs.submit(square_slowly, 9, marker=str(marker), steps=20, pause=0.05,
                         progress=jobs.progress, study=tmp_path)
    assert second.key == first.key
    assert second.result(timeout=60) == 81 and first.result() == 81
    assert _runs(marker) == 1
    with core._forget_all():           # a later session in a restarted process
        third = jobs.submit(square_slowly, 9, marker=str(marker), steps=20, pause=0.05,
                            progress=jobs.progress, study=tmp_path)
        assert third.status() == "done" and third.result() == 81
    assert _runs(marker) == 1


@pytest.mark.slow
def test_another_process_waits_instead_of_computing(cluster, fresh, tmp_path):
    """A second app process asking for a running job waits for it (the file lock) and reads
    the first process's result; it never runs the computation itself."""
    marker = tmp_path / "runs"
    first = jobs.submit(square_slowly, 3, marker=str(marker), steps=40, pause=0.1,
                        progress=jobs.progress, study=tmp_path)
    deadline = time.time() + 60
    while first.status() != "running" and time.time() < deadline:
        time.sleep(0.05)
    script = textwrap.dedent(f"""
        import sys, time
        import jobs
        from tests.test_jobs import square_slowly
        kw = dict(marker={str(marker)!r}, steps=40, pause=0.1, progress=jobs.progress)
        key = jobs.job_key(square_slowly, (3,), kw)
        there = (jobs.job_folder({str(tmp_path)!r}) / f"{{key}}.pkl").exists()
        h = jobs.submit(square_slowly, 3, study={str(tmp_path)!r}, **kw)
        print(there, h.status(), h.result())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=180, env={**os.environ, "CART_JOBS": "inline"}, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    # inline, the wait happens inside submit: it returns the finished job
    assert out.stdout.split() == ["False", "done", "9"]
    assert first.result() == 9 and _runs(marker) == 1     # computed once, by the first


@pytest.mark.slow
def test_cancelled_job_stops(cluster, fresh, tmp_path):
    marker = tmp_path / "beats"
    h = jobs.submit(count_until_cancelled, marker=str(marker), progress=jobs.progress,
                    study=tmp_path)
    deadline = time.time() + 60
    while _runs(marker) < 5 and time.time() < deadline:
        time.sleep(0.05)
    h.cancel()
    assert h.wait(30) == "cancelled"
    with pytest.raises(jobs.JobCancelled):
        h.result()
    time.sleep(0.5)
    stopped_at = _runs(marker)
    time.sleep(1.0)
    assert _runs(marker) == stopped_at < 2000      # the worker stopped counting
    assert not (tmp_path / ".cache" / "jobs" / f"{h.key}.pkl").exists()
    # asked again: the same cancelled job, until the user asks to run it again
    assert jobs.submit(count_until_cancelled, marker=str(marker), progress=jobs.progress,
                       study=tmp_path).status() == "cancelled"
    # the workers are free for the next job
    assert jobs.submit(square_slowly, 2, marker=str(tmp_path / "next"),
                       study=tmp_path).result(timeout=60) == 4


@pytest.mark.slow
def test_worker_that_dies_is_retried(cluster, fresh, tmp_path):
    marker = tmp_path / "attempts"
    h = jobs.submit(die_first_time, marker=str(marker), study=tmp_path)
    assert h.result(timeout=120) == "survived on attempt 2"
    pids = marker.read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1]
    cluster.wait_for_workers(2, timeout=120)        # the nanny restarted the dead one


@pytest.mark.slow
def test_job_whose_workers_always_die_fails_with_a_reason(cluster, fresh, tmp_path):
    marker = tmp_path / "attempts"
    h = jobs.submit(always_die, marker=str(marker), study=tmp_path)
    assert h.wait(180) == "error"
    assert "died each time" in h.error() and "memory_limit" in h.error()
    assert _runs(marker) >= 2
    cluster.wait_for_workers(2, timeout=120)
