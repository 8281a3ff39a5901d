"""deploy/recycle.py (restart an app process above its memory limit, gently) and the jobs
and memory parts of the systemd units deploy/render.py writes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy import recycle

ROOT = Path(__file__).resolve().parent.parent
A, B, C = "cart-explorer@8501.service", "cart-explorer@8502.service", \
    "cart-explorer@8503.service"


def test_the_largest_process_above_the_limit_is_recycled():
    assert recycle.choose({A: 5000, B: 4500, C: 100}, {A, B, C}, limit_mb=4096) == A
    assert recycle.choose({A: 3000, B: 4000}, {A, B}, limit_mb=4096) is None


def test_the_only_live_process_is_never_recycled():
    assert recycle.choose({A: 5000}, {A}, limit_mb=4096) is None
    # the other process is down: wait rather than cut every session
    assert recycle.choose({A: 5000, B: 100}, {A}, limit_mb=4096) is None
    # the largest has no healthy peer, the second has (the first one is healthy)
    assert recycle.choose({A: 5000, B: 4500}, {A}, limit_mb=4096) == B


def test_port_and_health_check_of_a_unit():
    assert recycle.port_of(A) == "8501"
    assert not recycle.is_healthy("cart-explorer@1.service")   # nothing listens on port 1


def _render(out: Path, *extra: str) -> Path:
    subprocess.run([sys.executable, str(ROOT / "deploy" / "render.py"), "--out", str(out),
                    "--app-dir", str(ROOT), *extra], check=True, capture_output=True)
    return out / "systemd"


def test_units_send_jobs_to_the_scheduler_and_cap_memory(tmp_path):
    units = _render(tmp_path, "--worker-memory", "6GiB", "--memory-high", "3G",
                    "--memory-max", "4G", "--recycle-mb", "3500", "--sessions-per-process",
                    "25", "--base-path", "/explorer")
    app = (units / "cart-explorer@.service").read_text()
    assert "Environment=DASK_SCHEDULER_ADDRESS=tcp://127.0.0.1:8786" in app
    assert "MemoryHigh=3G" in app and "MemoryMax=4G" in app
    worker = (units / "cart-explorer-worker@.service").read_text()
    assert "dask worker tcp://127.0.0.1:8786 --nworkers 1 --nthreads 1 --memory-limit 6GiB" \
        in worker
    assert "MemoryMax=7680M" in worker and "ReadOnlyPaths=/srv/studies" in worker
    sched = (units / "cart-explorer-scheduler.service").read_text()
    assert "dask scheduler --host 127.0.0.1 --port 8786" in sched
    assert "--limit-mb 3500 --base-path \"explorer\"" in \
        (units / "cart-explorer-recycle.service").read_text()
    assert "OnUnitActiveSec=1min" in (units / "cart-explorer-recycle.timer").read_text()
    site = (tmp_path / "nginx" / "cart-explorer.conf").read_text()
    assert "server 127.0.0.1:8501 max_fails=3 fail_timeout=10s max_conns=25;" in site


def test_local_jobs_leave_the_scheduler_address_empty(tmp_path):
    units = _render(tmp_path, "--jobs", "local", "--local-workers", "2")
    app = (units / "cart-explorer@.service").read_text()
    assert "Environment=DASK_SCHEDULER_ADDRESS=\n" in app
    assert "Environment=CART_JOB_WORKERS=2" in app
    assert "max_conns" not in (tmp_path / "nginx" / "cart-explorer.conf").read_text()


def test_bad_sizes_are_refused_with_the_option_named(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "deploy" / "render.py"), "--out",
                          str(tmp_path), "--worker-memory", "lots"], capture_output=True,
                         text=True)
    assert out.returncode != 0 and "--worker-memory 'lots'" in out.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_rendered_units_pass_systemd_analyze_verify(tmp_path):
    units = _render(tmp_path / "r", "--service-user", "root")
    here = tmp_path / "units"
    here.mkdir()
    for name, instance in [("cart-explorer@.service", "cart-explorer@8501.service"),
                           ("cart-explorer-worker@.service", "cart-explorer-worker@1.service"),
                           ("cart-explorer-scheduler.service", None),
                           ("cart-explorer-recycle.service", None),
                           ("cart-explorer-recycle.timer", None),
                           ("cart-explorer.target", None)]:
        shutil.copy(units / name, here / (instance or name))
    files = sorted(str(p) for p in here.iterdir())
    out = subprocess.run(["systemd-analyze", "verify", *files], capture_output=True,
                         text=True, cwd=here)
    problems = [line for line in out.stderr.splitlines()
                if "cart-explorer" in line and "Failed to" not in line]
    assert out.returncode == 0 and not problems, out.stderr


# ---- against real processes: only systemctl is stood in for ----------------------------------
_APP = r'''
import sys, subprocess
from http.server import BaseHTTPRequestHandler, HTTPServer

port, mb, child_mb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
held = bytearray(mb * 1024 * 1024)
for i in range(0, len(held), 4096):         # touch every page: resident, not just reserved
    held[i] = 1
helper = None
if child_mb:                                # a second process in the unit (a study worker)
    helper = subprocess.Popen([sys.executable, "-c",
        f"b = bytearray({child_mb} * 1048576)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
        "import time\ntime.sleep(600)"])


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.endswith("/_stcore/health")
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b"ok" if ok else b"")

    def log_message(self, *args):
        pass


print(helper.pid if helper else 0, flush=True)
HTTPServer(("127.0.0.1", port), Health).serve_forever()
'''


class _Units:
    """Two `cart-explorer@PORT` "units": real processes (a health endpoint, resident memory,
    a helper process) in stand-in cgroups (a folder per unit whose cgroup.procs lists them);
    `systemctl` answers from them and `restart` replaces a unit's processes."""

    def __init__(self, root: Path, sizes: dict[str, tuple[int, int]]) -> None:
        self.root, self.sizes = root, sizes
        self.procs: dict[str, list[subprocess.Popen | int]] = {}
        self.restarted: list[str] = []
        for unit in sizes:
            self.start(unit)

    def start(self, unit: str, *, mb: int | None = None) -> None:
        size, child = self.sizes[unit] if mb is None else (mb, 0)
        proc = subprocess.Popen([sys.executable, "-c", _APP, recycle.port_of(unit), str(size),
                                 str(child)], stdout=subprocess.PIPE, text=True)
        helper = int(proc.stdout.readline().strip() or 0)
        self.procs[unit] = [proc, *([helper] if helper else [])]
        group = self.root / unit
        group.mkdir(parents=True, exist_ok=True)
        (group / "cgroup.procs").write_text("".join(f"{p if isinstance(p, int) else p.pid}\n"
                                                    for p in self.procs[unit]))
        deadline = time.monotonic() + 30
        while not recycle.is_healthy(unit) and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self, unit: str) -> None:
        for p in self.procs.pop(unit, []):
            if isinstance(p, int):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGTERM)
            else:
                p.terminate()
                p.wait(10)

    def systemctl(self, *args: str) -> str:
        if args[0] == "list-units":
            return "".join(f"{u} loaded active running app\n" for u in self.procs)
        if args[0] == "show":
            return f"/{args[-1]}\n"
        if args[0] == "restart":
            self.restarted.append(args[1])
            self.stop(args[1])
            self.start(args[1], mb=5)
            return ""
        raise AssertionError(args)


@pytest.fixture
def two_units(tmp_path, monkeypatch):
    from tests.conftest import free_port

    a, b = f"cart-explorer@{free_port()}.service", f"cart-explorer@{free_port()}.service"
    units = _Units(tmp_path / "cgroup", {a: (120, 60), b: (10, 0)})
    monkeypatch.setattr(recycle, "CGROUP_ROOT", tmp_path / "cgroup")
    monkeypatch.setattr(recycle, "_systemctl", units.systemctl)
    try:
        yield units, a, b
    finally:
        for unit in list(units.procs):
            units.stop(unit)


def test_recycles_a_real_process_over_its_limit_and_waits_for_it(two_units, capsys):
    units, a, b = two_units
    assert sorted(recycle.units()) == sorted([a, b])
    assert len(recycle.unit_pids(a)) == 2                   # the app and its helper
    big, small = recycle.unit_rss_mb(a), recycle.unit_rss_mb(b)
    assert 180 <= big < 260 and small < 60                  # 120 + 60 MB touched, + Python
    assert recycle.rss_mb(recycle.unit_pids(a)[:1]) < big   # the helper's memory counts
    assert recycle.main(["--limit-mb", "150", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["dry_run"] is True and not units.restarted

    assert recycle.main(["--limit-mb", "150", "--wait", "30"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["event"] == "recycle" and record["unit"] == a
    assert record["rss_mb"] >= 180 and record["limit_mb"] == 150
    assert units.restarted == [a] and recycle.is_healthy(a)
    assert recycle.unit_rss_mb(a) < 60                      # it came back small
    assert recycle.main(["--limit-mb", "150"]) == 0         # nothing over the limit now
    assert capsys.readouterr().out == "" and units.restarted == [a]


def test_the_only_healthy_process_is_left_running(two_units, capsys):
    units, a, b = two_units
    units.stop(b)                       # the other process is down: its unit still listed
    units.procs[b] = []
    assert recycle.main(["--limit-mb", "150"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["event"] == "recycle_deferred" and out["units"] == [a]
    assert not units.restarted and recycle.is_healthy(a)


# ---- the units' structure (what systemd-analyze verify checks, for machines without it) -------
SECTIONS = {
    "Unit": {"Description", "After", "Wants", "Requires", "PartOf", "Before", "BindsTo"},
    "Service": {"Type", "User", "Group", "WorkingDirectory", "StateDirectory", "Environment",
                "ExecStart", "Restart", "RestartSec", "StandardOutput", "StandardError",
                "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
                "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectControlGroups", "RestrictSUIDSGID", "LockPersonality",
                "ReadOnlyPaths", "ReadWritePaths", "MemoryHigh", "MemoryMax"},
    "Timer": {"OnBootSec", "OnUnitActiveSec", "AccuracySec", "Unit"},
    "Install": {"WantedBy"},
}
ALLOWED = {"Type": {"simple", "oneshot", "exec", "notify"},
           "Restart": {"no", "on-failure", "always"},
           "ProtectSystem": {"strict", "full", "true"}}
_SIZE = re.compile(r"^(\d+)([KMGT])$")


def parse_unit(text: str, name: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file -> [(key, value)], refusing what systemd would not read."""
    out: dict[str, list[tuple[str, str]]] = {}
    section = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert "{{" not in line, f"{name}:{n}: placeholder left: {line}"
        if line.startswith("["):
            assert line.endswith("]") and line[1:-1] in SECTIONS, f"{name}:{n}: {line}"
            section = line[1:-1]
            out.setdefault(section, [])
            continue
        assert section is not None, f"{name}:{n}: a setting outside a section"
        assert "=" in line and not line.endswith("\\"), f"{name}:{n}: not key=value: {line}"
        key, value = (part.strip() for part in line.split("=", 1))
        assert key in SECTIONS[section], f"{name}:{n}: [{section}] does not take {key}"
        if key in ALLOWED:
            assert value in ALLOWED[key], f"{name}:{n}: {key}={value}"
        out[section].append((key, value))
    return out


def _mb(size: str) -> int:
    got = _SIZE.match(size)
    assert got, f"not a systemd size: {size}"
    return int(got[1]) * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 ** 2}[got[2]]


def test_rendered_units_are_well_formed_and_refer_to_each_other(tmp_path):
    units = _render(tmp_path, "--memory-high", "3G", "--memory-max", "4G")
    files = {p.name: parse_unit(p.read_text(), p.name) for p in units.iterdir()}
    assert set(files) == {"cart-explorer@.service", "cart-explorer-scheduler.service",
                          "cart-explorer-worker@.service", "cart-explorer-recycle.service",
                          "cart-explorer-recycle.timer", "cart-explorer.target"}
    for name, sections in files.items():
        kinds = {"service": {"Unit", "Service"}, "timer": {"Unit", "Timer", "Install"},
                 "target": {"Unit", "Install"}}[name.rsplit(".", 1)[1]]
        assert kinds <= set(sections), f"{name}: sections {sorted(sections)}"
        settings = [kv for part in sections.values() for kv in part]
        for key, value in settings:
            if key in ("After", "Wants", "Requires", "PartOf", "Unit"):
                for other in value.split():
                    if other.startswith("cart-explorer"):
                        template = re.sub(r"@[^.]+\.", "@.", other)
                        assert template in files, f"{name}: {key}={other} is not rendered"
            if key == "ExecStart":
                program = Path(value.split()[0])
                assert program.is_absolute() and program.exists(), f"{name}: {value}"
                if "recycle.py" in value:
                    assert (ROOT / "deploy" / "recycle.py").samefile(value.split()[1])
            if key in ("MemoryHigh", "MemoryMax"):
                _mb(value)
        if "Service" in sections:
            keys = dict(sections["Service"])
            assert keys.get("ExecStart") and keys.get("Type"), name
            if "MemoryHigh" in keys:
                assert _mb(keys["MemoryHigh"]) < _mb(keys["MemoryMax"]), name
    # the timer starts the recycle service (same name) and the app units belong to the target
    assert "cart-explorer-recycle.service" in files
    for name in ("cart-explorer@.service", "cart-explorer-worker@.service",
                 "cart-explorer-scheduler.service"):
        assert ("PartOf", "cart-explorer.target") in files[name]["Unit"]
    app = dict(files["cart-explorer@.service"]["Service"])
    assert (app["MemoryHigh"], app["MemoryMax"]) == ("3G", "4G")


def test_the_parser_refuses_what_systemd_would_not_read():
    with pytest.raises(AssertionError, match="does not take MemoryMaximum"):
        parse_unit("[Service]\nMemoryMaximum=4G\n", "x.service")
    with pytest.raises(AssertionError, match="placeholder left"):
        parse_unit("[Service]\nExecStart={{PYTHON}}\n", "x.service")
    with pytest.raises(AssertionError, match="outside a section"):
        parse_unit("Type=simple\n", "x.service")
    with pytest.raises(AssertionError, match="Restart=sometimes"):
        parse_unit("[Service]\nRestart=sometimes\n", "x.service")


# ---- the jobs units' own commands ----------------------------------------------------------------
def _exec_start(unit: Path, **subst: str) -> tuple[list[str], dict[str, str]]:
    """The ExecStart command of a rendered unit (systemd's %i / %H filled in) and its
    Environment= settings."""
    sections = parse_unit(unit.read_text(), unit.name)
    service = sections["Service"]
    command = dict(service)["ExecStart"]
    for spec, value in subst.items():
        command = command.replace(f"%{spec}", value)
    env = dict(v.split("=", 1) for k, v in service if k == "Environment")
    return command.split(), env


@pytest.mark.slow
def test_scheduler_and_worker_units_run_a_study_job(tmp_path, monkeypatch, demo_dir):
    """The scheduler and worker units' ExecStart lines, run as they are written (the
    dashboard moved to a free port, HOME to a temporary folder, and PYTHONPATH naming this
    checkout because the shared venv's editable install names another one), serve a job
    an app process submits with the unit's DASK_SCHEDULER_ADDRESS: the study is loaded on the
    worker from STUDIES_ROOT, as on the server."""
    import jobs
    from jobs import core
    from jobs.cluster import client, shutdown
    from tests.conftest import free_port
    from tests.test_jobs import patient_count

    port, studies = free_port(), tmp_path / "studies"
    shutil.copytree(demo_dir, studies / "demo", ignore=shutil.ignore_patterns(".cache"))
    units = _render(tmp_path / "r", "--scheduler", f"127.0.0.1:{port}", "--worker-memory",
                    "1GiB", "--studies-root", str(studies), "--no-deid")
    base = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    try:
        for name, host in (("cart-explorer-scheduler.service", None),
                           ("cart-explorer-worker@.service", "test")):
            cmd, env = _exec_start(units / name, i="1", H=host or "")
            cmd = [c.replace("127.0.0.1:8787", f"127.0.0.1:{free_port()}") for c in cmd]
            env = {**base, **env, "HOME": str(tmp_path / "home"),
                   "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
            procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        app_env = dict(_exec_start(units / "cart-explorer@.service", i="8501")[1])
        assert app_env["DASK_SCHEDULER_ADDRESS"] == f"tcp://127.0.0.1:{port}"
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", app_env["DASK_SCHEDULER_ADDRESS"])
        monkeypatch.delenv("CART_JOBS", raising=False)
        monkeypatch.setenv("STUDIES_ROOT", str(studies))
        shutdown()
        from data_loaders import load_study

        study = load_study(studies / "demo")
        c = client()
        c.wait_for_workers(1, timeout=120)
        with core._forget_all():
            handle = jobs.submit(patient_count, study, study=study)
            assert handle.result(timeout=120) == study.patients.height
        worker = next(iter(c.scheduler_info()["workers"].values()))
        assert worker["name"] == "test-1" and worker["nthreads"] == 1
        assert worker["memory_limit"] == 1024 ** 3
    finally:
        shutdown()
        for p in reversed(procs):
            p.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(20)
            if p.poll() is None:
                p.kill()
