"""Shared fixtures: the demo study, tiny hand-written studies, AppTest pages, a live app server
and a headless Chromium page (Debian's /usr/bin/chromium driven by Playwright)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "sample_data" / "demo"
SHARED_DATA = ROOT.parent / "shared" / "data"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


# Jobs (jobs/) run in the caller's thread in tests, so AppTest pages and CLI calls need no
# Dask cluster; tests/test_jobs.py starts a real one and exercises the cluster path.
os.environ.setdefault("CART_JOBS", "inline")


def package_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python process that imports the project from this checkout
    (an installed copy elsewhere must not answer instead)."""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, **extra}

@pytest.fixture(scope="session")
def demo_dir() -> Path:
    return DEMO


@pytest.fixture(scope="session")
def demo_study():
    from data_loaders import load_study

    return load_study(DEMO)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real public test files not present at {SHARED_DATA} (../shared/data)")
    return SHARED_DATA


PATIENTS_CSV = """subject_id,age,sex,infusion_date,death_day
P1,34,M,2025-01-10,
P2,51,F,2025-02-01,
"""


@pytest.fixture
def write_study(tmp_path: Path) -> Callable[..., Path]:
    """write_study(patients=..., measurements=..., **files) -> folder. Values are file text;
    keys are file names without .csv unless they contain a dot. patients defaults to two."""

    def make(**files: str | bytes) -> Path:
        folder = tmp_path / "study"
        folder.mkdir(exist_ok=True)
        files.setdefault("patients", PATIENTS_CSV)
        for name, text in files.items():
            if text is None:
                continue
            fname = name if "." in name else f"{name}.csv"
            path = folder / fname
            if isinstance(text, bytes):
                path.write_bytes(text)
            else:
                path.write_text(text, encoding="utf-8")
        return folder

    return make


# ---- AppTest ---------------------------------------------------------------------------------
@pytest.fixture
def real_navigation() -> Iterator[None]:
    """Make AppTest reruns execute app.py like a server does (tools/apptest.py says why)."""
    from tools.apptest import real_navigation as patch

    undo = patch()
    yield
    undo()


@pytest.fixture
def app_page(monkeypatch: pytest.MonkeyPatch, real_navigation: None) -> Callable[..., object]:
    """app_page("pages/x.py", study=DIR, query={...}) -> a run AppTest of that page."""
    from streamlit.testing.v1 import AppTest

    def run(page: str | None = None, *, study: Path | str | None = None,
            query: dict[str, str] | None = None, timeout: float = 60):
        monkeypatch.setenv("STUDY_DIR", str(study or DEMO))
        monkeypatch.delenv("STUDIES_ROOT", raising=False)
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.run()
        if page:
            # the first run sets up the sidebar context; then the page itself
            at.switch_page(page).run()
        return at

    return run


# ---- live server and browser -------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(study: Path, *, port: int | None = None, env: dict | None = None,
                    extra: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    port = port or free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           *(extra or [])]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "STUDY_DIR": str(study),
                                                **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    raise RuntimeError(f"streamlit did not start on {url}:\n{out[-2000:]}")


def stop_streamlit(proc: subprocess.Popen) -> None:
    """Stop a server `start_streamlit` started (killed when it does not stop in 10 s)."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def app_server() -> Iterator[str]:
    """One `streamlit run app.py` on the demo study for all browser tests."""
    proc, url = start_streamlit(DEMO)
    yield url
    stop_streamlit(proc)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    yield pg
    ctx.close()


@pytest.fixture(scope="session")
def export_ready() -> str:
    """The shared kaleido export server (one Chromium for the whole test session)."""
    from components import export

    try:
        return export.start_export_server()
    except export.ExportUnavailable as err:
        pytest.skip(str(err))
