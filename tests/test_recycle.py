"""deploy/recycle.py (restart an app process above its memory limit, gently) and the jobs
and memory parts of the systemd units deploy/render.py writes."""

from __future__ import annotations

import shutil
import subprocess
import sys
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
                           ("cart-explorer-recycle.timer", None)]:
        shutil.copy(units / name, here / (instance or name))
    files = sorted(str(p) for p in here.iterdir())
    out = subprocess.run(["systemd-analyze", "verify", *files], capture_output=True,
                         text=True, cwd=here)
    problems = [line for line in out.stderr.splitlines()
                if "cart-explorer" in line and "Failed to" not in line]
    assert out.returncode == 0 and not problems, out.stderr
