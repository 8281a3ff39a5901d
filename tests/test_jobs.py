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


def square_cached(x: int, *, marker: str, force: bool = False) -> int:
    _note(Path(marker))
    return x * x


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
    # nor do `force` and `workers` (how, not what): the CLI's --force joins the page's job
    assert k1 == jobs.job_key(square_slowly, (a,), {"marker": "m", "force": True,
                                                    "workers": 4})
    assert k1 != jobs.job_key(square_slowly, (a,), {"marker": "m", "steps": 5})


def test_a_rerun_takes_only_a_result_whose_writer_was_forced_after_it_was_asked(tmp_path):
    """A rerun takes another process's result only when that process computed afresh and
    started after the rerun was asked for (its status record answers the request); no
    clock is read, so a writer's clock ahead of this machine's cannot pass an old result."""
    job = core._Job("k", "name", tmp_path, None, JobSettings(mode="inline"))
    assert not job.stored()
    job.result_path.write_bytes(b"x")
    assert job.stored()                              # a plain request takes any result
    job.fresh = True
    job.ask()
    assert job.request_path(job.token).is_file()
    future = time.time() + 3600                      # a writer whose clock runs ahead
    os.utime(job.result_path, (future, future))
    core._write_json(job.status_path, {"state": "done", "fresh": False, "answers": [],
                                       "started": future})
    assert not job.stored()                          # not forced: files were not re-read
    core._write_json(job.status_path, {"state": "done", "fresh": True, "answers": ["other"],
                                       "started": future})
    assert not job.stored()                          # forced, but started before the request
    writer = core._Job("k", "name", tmp_path, None, JobSettings(mode="inline"))
    writer.fresh = True
    writer.take_requests()                           # starts after the request: answers it
    writer.write_status("done")
    assert job.token in core._read_json(job.status_path)["answers"] and job.stored()
    job.withdraw()
    assert not job.request_path(job.token).exists()


def _wait_for(cond: object, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():                                # type: ignore[operator]
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("writer_forced", [False, True])
def test_a_forced_rerun_waiting_for_another_process_takes_only_its_forced_result(
        tmp_path, monkeypatch, writer_forced):
    """`cli.py gate` (not forced, reusing cached files) runs while the page asks "Gate all
    files again": the page waits for its lock, then computes again itself. A forced run
    that started after the request is taken as it is."""
    monkeypatch.setenv("CART_JOBS", "inline")
    marker = tmp_path / "runs"
    with core._forget_all():
        key = jobs.job_key(square_cached, (3,), {"marker": str(marker)})
        folder = core.job_folder(tmp_path)
        other = core._Job(key, "other", folder, None, JobSettings(mode="inline"))
        fd = core._try_lock(other.lock_path)         # the other process runs the job
        assert fd is not None
        got: dict[str, object] = {}

        def page() -> None:
            handle = jobs.submit(square_cached, 3, marker=str(marker), force=True,
                                 study=tmp_path)
            got["value"] = handle.result(timeout=20)

        t = threading.Thread(target=page)
        t.start()
        _wait_for(lambda: list(folder.glob(f"{key}.rerun-*")))     # the page asked
        other.fresh = writer_forced
        if writer_forced:
            other.take_requests()
        core._save_result(other.result_path, 9 if writer_forced else -1)
        other.write_status("done")
        core._unlock(fd)
        t.join(20)
        assert not t.is_alive()
        if writer_forced:
            assert got["value"] == 9 and _runs(marker) == 0
        else:
            assert got["value"] == 9 and _runs(marker) == 1       # computed afresh
        assert not list(folder.glob(f"{key}.rerun-*"))            # the request is withdrawn


def test_a_result_another_process_wrote_again_is_read_again(tmp_path, monkeypatch):
    """The results read back are keyed by the file as it is now, not by its path only."""
    monkeypatch.setenv("CART_JOBS", "inline")
    marker = tmp_path / "runs"
    with core._forget_all():
        handle = jobs.submit(square_cached, 5, marker=str(marker), study=tmp_path)
        assert handle.result() == 25 and jobs.cached_result(handle.key) == 25
        path = core.job_folder(tmp_path) / f"{handle.key}.pkl"
        core._save_result(path, "written again by another process")
        assert jobs.cached_result(handle.key) == "written again by another process"
        assert handle.result() == "written again by another process"


def test_force_submits_a_rerun_of_the_same_key(tmp_path, monkeypatch):
    monkeypatch.setenv("CART_JOBS", "inline")
    marker = tmp_path / "runs"
    with core._forget_all():
        first = jobs.submit(square_cached, 2, marker=str(marker), study=tmp_path)
        again = jobs.submit(square_cached, 2, marker=str(marker), force=False, study=tmp_path)
        assert again.result() == first.result() == 4 and _runs(marker) == 1
        forced = jobs.submit(square_cached, 2, marker=str(marker), force=True, study=tmp_path)
        assert forced.key == first.key and forced.result() == 4 and _runs(marker) == 2


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
        # a ValueError is the computation's message to the user, shown as it is
        assert bad.status() == "error" and bad.error() == "no such thing as 3"
        with pytest.raises(jobs.JobFailed, match="no such thing"):
            bad.result()
    assert _runs(marker) == 1
    with pytest.raises(KeyError):
        jobs.cached_result("0" * 32, study=tmp_path)


# ---- a real LocalCluster ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two workers. While they run, `__main__` is a script that must never run again (as
    under Streamlit, where it is the page script): a worker started, or restarted after it
    died, from this process would run it and fail."""
    import types

    saved = {k: os.environ.pop(k, None) for k in ("CART_JOBS", "DASK_SCHEDULER_ADDRESS")}
    script = tmp_path_factory.mktemp("main") / "page_script.py"
    script.write_text('raise SystemExit("a worker ran the app script")\n')
    real_main = sys.modules["__main__"]
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    sys.modules["__main__"] = fake
    shutdown()
    try:
        c = client(JobSettings(workers=2, memory_limit="1GiB"))
        c.wait_for_workers(2, timeout=120)
        yield c
    finally:
        shutdown()
        sys.modules["__main__"] = real_main
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
def test_marker_ranking_of_every_cell_type_runs_on_a_worker(cluster, fresh, demo_dir,
                                                             tmp_path):
    """The Immune landscape's marker job on a worker: the demo study loaded there, its
    progress pushed back while it reads the store, the table stored and read by a second
    session without a worker."""
    import shutil

    from data_loaders import load_study
    from views import markers as mk

    shutil.copytree(demo_dir, tmp_path / "demo", ignore=shutil.ignore_patterns(".cache"))
    study = load_study(tmp_path / "demo")
    params = mk.GroupMarkersParams(top=5)
    h = jobs.submit(mk.run_group_markers, study, params=params, progress=jobs.progress,
                    study=study)
    messages = set()
    while not h.done():
        messages.add(h.progress().message)
        time.sleep(0.05)
    assert h.status() == "done", h.error()
    table = h.result()
    assert table.height == 5 * table.get_column("group").n_unique() >= 5 * 8
    assert any("cells read" in m or "marker arrays" in m for m in messages), messages
    with core._forget_all():
        assert mk.group_markers(study, params=params).data.equals(table)


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


def cube(x: int) -> int:
    time.sleep(0.05)
    return x ** 3


def sum_of_cubes(n: int) -> int:
    from jobs.parallel import parallel_map

    return sum(parallel_map(cube, list(range(n)), label="cubes"))


def scaled_count(item: tuple) -> int:
    study, k = item
    return k * int(study.patients.height)


def counts_over_pieces(study: object) -> list[int]:
    from jobs.parallel import parallel_map

    return parallel_map(scaled_count, [(study, k) for k in (1, 2, 3)], label="pieces")


@pytest.mark.slow
def test_pieces_of_a_job_get_the_study_by_reference(cluster, fresh, write_study):
    """A Study inside a piece's item travels as its reference and is loaded on the worker
    that runs the piece (views/markers.py sums blocks of cells this way)."""
    from data_loaders import load_study

    study = load_study(write_study())
    h = jobs.submit(counts_over_pieces, study, study=study)
    assert h.result(timeout=120) == [2, 4, 6]


@pytest.mark.slow
def test_a_job_fans_out_over_the_workers(cluster, fresh, tmp_path):
    """A job splits its work into tasks on every worker (one thread each: the job steps out
    of its thread while it waits) and reports the pieces done."""
    h = jobs.submit(sum_of_cubes, 40, study=tmp_path)
    seen = []
    assert jobs.wait(h, on_progress=seen.append, every=0.05) == sum(i ** 3 for i in range(40))
    assert any("of 40 cubes" in p.message for p in seen), seen


@pytest.mark.slow
def test_fcs_files_gated_one_per_task_match_gating_here(cluster, fresh, tmp_path):
    from data_loaders.formats.gating import GateJob, gate_files
    from jobs.parallel import executor
    from tests import _flow_files as ff

    demo_flow = ROOT / "sample_data" / "demo" / "flow"
    gml = ff.write_gatingml(tmp_path / "gates.xml")
    todo = [GateJob(str(p), str(gml), label=p.name) for p in sorted(demo_flow.glob("*.fcs"))]
    todo.append(GateJob(str(tmp_path / "missing.fcs"), str(gml), label="missing.fcs"))
    here = gate_files(todo)
    with executor() as pool:
        assert pool is not None
        there = gate_files(todo, executor=pool)
    assert [r.populations for r in there] == [r.populations for r in here]
    assert there[-1].error and "missing.fcs" in there[-1].error
    assert all(r.ok for r in there[:-1]) and len(there) == len(todo)


def _panel_script(marker: str, folder: str, start: str | None) -> None:
    import streamlit as st

    from components import jobs_panel
    from tests.test_jobs import count_until_cancelled

    got = jobs_panel.run(count_until_cancelled, marker=marker, study=folder, key="t",
                         label="Counting", start=start)
    st.write(f"result: {got.result() if got else None}")


@pytest.mark.slow
def test_page_panel_shows_progress_and_cancels(cluster, fresh, tmp_path):
    from streamlit.testing.v1 import AppTest

    marker = str(tmp_path / "beats")
    at = AppTest.from_function(_panel_script, args=(marker, str(tmp_path), "Count"),
                               default_timeout=30)
    at.run()
    assert [b.label for b in at.button] == ["Count"] and not Path(marker).exists()
    at.button(key="t-start").click().run()
    deadline = time.time() + 60
    while _runs(Path(marker)) < 3 and time.time() < deadline:
        time.sleep(0.05)
    at.run()                                   # a later rerun joins the same job
    assert "Cancel" in [b.label for b in at.button]
    bar = at.get("progress")
    assert bar and "Counting" in bar[0].proto.text
    at.button(key="t-cancel").click().run()
    assert any("was cancelled" in i.value for i in at.info)
    assert "Run again" in [b.label for b in at.button]
    assert at.markdown[-1].value == "result: None"
    time.sleep(0.5)                            # the worker stops at its next report
    stopped = _runs(Path(marker))
    time.sleep(0.5)
    assert _runs(Path(marker)) == stopped


def test_page_panel_returns_a_finished_result_at_once(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CART_JOBS", "inline")

    def script(marker: str, folder: str) -> None:
        import streamlit as st

        from components import jobs_panel
        from tests.test_jobs import square_slowly

        got = jobs_panel.run(square_slowly, 6, marker=marker, study=folder, key="sq",
                             label="Squaring", start="Square")
        st.write(f"result: {got.result() if got else None}")

    marker = str(tmp_path / "runs")
    with core._forget_all():
        at = AppTest.from_function(script, args=(marker, str(tmp_path)), default_timeout=30)
        at.run()
        assert at.markdown[-1].value == "result: None"
        at.button(key="sq-start").click().run()
        assert at.markdown[-1].value == "result: 36"
        fresh_session = AppTest.from_function(script, args=(marker, str(tmp_path)),
                                              default_timeout=30)
        fresh_session.run()                      # no button needed: the result is stored
        assert fresh_session.markdown[-1].value == "result: 36" and not fresh_session.button
    assert _runs(Path(marker)) == 1


@pytest.mark.slow
def test_a_lab_scheduler_runs_the_same_jobs(tmp_path):
    """`dask scheduler` and `dask worker` started as the systemd units start them; with
    DASK_SCHEDULER_ADDRESS set, the same submit runs there (nothing else changed)."""
    from tests.conftest import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CART_JOBS", None)
    dask = str(Path(sys.executable).parent / "dask")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen(
            [dask, "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "1", "--nthreads", "1",
             "--memory-limit", "1GiB", "--name", "lab-1", "--no-dashboard"], cwd=ROOT,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        marker = tmp_path / "runs"
        script = textwrap.dedent(f"""
            import jobs
            from jobs.cluster import client, describe
            from tests.test_jobs import square_slowly
            client().wait_for_workers(1, timeout=60)
            h = jobs.submit(square_slowly, 11, marker={str(marker)!r}, study={str(tmp_path)!r})
            print(h.result(timeout=60))
            print(describe())
        """)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=180, cwd=ROOT,
                             env={**env, "DASK_SCHEDULER_ADDRESS": f"tcp://127.0.0.1:{port}"})
        assert out.returncode == 0, out.stderr[-2000:]
        lines = out.stdout.split("\n")
        assert lines[0] == "121"
        assert f"Dask scheduler tcp://127.0.0.1:{port}: 1 worker(s), 1 thread(s)" in lines[1]
        assert _runs(marker) == 1
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


# ---- call sites --------------------------------------------------------------------------------
def test_compare_views_read_the_deseq2_job_result(demo_study, monkeypatch, tmp_path):
    """The Compare page runs DESeq2 as a job; its views then read that result instead of
    running DESeq2 again (the FDR shown is not part of the job's key)."""
    import polars as pl

    from analysis import differential as dif
    from analysis.cohort import Cohort
    from views import compare as cv
    from views.shared import clear_shared

    monkeypatch.setenv("CART_JOBS", "inline")
    calls = []

    def fake_compare(study: object, **kw: object) -> pl.DataFrame:
        calls.append(kw["method"])
        return pl.DataFrame({"feature": ["G1"], "p_value": [0.01]})

    monkeypatch.setattr(dif, "compare", fake_compare)
    params = cv.CompareParams(layer="rna", window="D28", method="deseq2", fdr=0.05)
    core = cv.comparison_params(params)
    assert core.fdr == 0.1 and cv.comparison_params(
        cv.CompareParams(layer="rna", window="D28", method="deseq2", fdr=0.2)) == core
    with jobs.core._forget_all():
        clear_shared()
        h = jobs.submit(cv.run_comparison, demo_study, cohort=Cohort(), params=core,
                        progress=jobs.progress, study=tmp_path)
        assert h.status() == "done" and calls == ["deseq2"]
        monkeypatch.setattr(jobs, "find", lambda *a, **k: jobs.core.find(
            *a, **{**k, "study": tmp_path}))
        res, _, _ = cv._comparison(demo_study, Cohort(), params)
        assert res.get_column("feature").to_list() == ["G1"] and calls == ["deseq2"]
        clear_shared()
        # rank tests are quick: never a job, computed directly
        cv._comparison(demo_study, Cohort(), replace_method(params, "rank"))
        assert calls == ["deseq2", "rank"]
    clear_shared()


def replace_method(params: object, method: str) -> object:
    from dataclasses import replace

    return replace(params, method=method)


# ---- stampedes: one computation per key across sessions ------------------------------------------
_SLOW_CALLS: list[int] = []


def _slow_view(study: object, *, cohort: object, params: object) -> str:
    _SLOW_CALLS.append(1)
    time.sleep(0.5)
    return f"spec of {params}"


def _many_sessions(fn: object, n: int = 6) -> list[object]:
    out: list[object] = []
    threads = [threading.Thread(target=lambda: out.append(fn())) for _ in range(n)]  # type: ignore[operator]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_the_view_cache_computes_once_for_sessions_asking_at_once(demo_study):
    from analysis.cohort import Cohort
    from components import session

    _SLOW_CALLS.clear()
    session.clear_views()
    got = _many_sessions(lambda: session.cached_view(_slow_view, demo_study, cohort=Cohort(),
                                                     params=("p", 1)))
    assert got == ["spec of ('p', 1)"] * 6 and len(_SLOW_CALLS) == 1
    session.clear_views()


def test_sibling_views_share_one_computation_when_asked_at_once():
    from views.shared import clear_shared, shared

    calls = []

    @shared
    def common(study: object, x: int) -> int:
        calls.append(x)
        time.sleep(0.5)
        return x * 2

    clear_shared()
    assert _many_sessions(lambda: common("study", 21)) == [42] * 6 and calls == [21]
    clear_shared()


@pytest.mark.slow
def test_cli_embed_joins_the_landscape_pages_running_umap(cluster, fresh, demo_dir, tmp_path):
    """The Immune landscape's UMAP job runs on the cluster; `cli.py embed`, started in
    another process while it runs, waits for it (showing its progress) and prints its result:
    the embedding is computed once, by the page's job."""
    import json
    import shutil

    from data_loaders import load_study
    from views import landscape as lv

    shutil.copytree(demo_dir, tmp_path / "demo", ignore=shutil.ignore_patterns(".cache"))
    folder, go = tmp_path / "demo", tmp_path / "go"
    script = textwrap.dedent(f"""
        import pathlib, time
        import cli, jobs
        from data_loaders import load_study
        from views import landscape as lv
        study = load_study({str(folder)!r})
        job = lv.umap_job(study, params=lv.LandscapeParams(lv.RNA, ""))
        while not pathlib.Path({str(go)!r}).exists():
            time.sleep(0.02)
        print("stored before:", jobs.find(job.fn, study, study=study, **job.kwargs))
        raise SystemExit(cli.main(["embed", "--study", {str(folder)!r}, "--no-flow"]))
    """)
    cli_run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env={**os.environ, "CART_JOBS": "inline"})
    try:
        study = load_study(folder)
        job = lv.umap_job(study, params=lv.LandscapeParams(lv.RNA, ""))
        page = jobs.submit(job.fn, study, study=study, progress=jobs.progress, **job.kwargs)
        deadline = time.time() + 120
        while page.progress().fraction <= 0 and not page.done() and time.time() < deadline:
            time.sleep(0.05)
        assert not page.done(), "the embedding ended before the command line was started"
        go.touch()
        out, err = cli_run.communicate(timeout=300)
    finally:
        if cli_run.poll() is None:
            cli_run.kill()
    assert cli_run.returncode == 0, err
    assert page.result().source == "computed"
    lines = out.splitlines()
    assert lines[0] == "stored before: None"           # the page's job was still running
    assert lines[1].startswith(f"single-cell: {page.result().n:,} points, computed in ")
    assert page.result().cache_file in lines[1]
    # its bar showed the page's job's progress (read from the job's status beside its lock)
    assert "single-cell: UMAP of" in err or "single-cell: PCA on" in err, err
    status = json.loads((jobs.job_folder(folder) / f"{page.key}.json").read_text())
    assert status["state"] == "done" and status["pid"] == os.getpid()   # run here, once
