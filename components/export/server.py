"""The export server: kaleido 1.x drawing figures in headless Chromium through one long-lived
server (`kaleido.start_sync_server`), started once per process, so a warm export costs a few
tenths of a second instead of a browser start; finding the browser and saying what to install
when there is none."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_HINT", "ExportUnavailable", "find_browser", "export_unavailable_reason",
           "export_server_running", "start_export_server", "stop_export_server", "call",
           "call_many", "BATCH"]

CHROMIUM_HINT = "apt-get install chromium"
_BROWSER_ENV = "CART_CHROMIUM"  # our override; kaleido's own BROWSER_PATH is honoured too


class ExportUnavailable(RuntimeError):
    """Figures cannot be drawn to files here (no usable Chromium)."""


def find_browser(path: str | os.PathLike | None = None) -> str | None:
    """The Chromium executable to draw with: `path`, else $CART_CHROMIUM, else $BROWSER_PATH,
    else the first Chromium or Chrome found on this machine. None when it is not there."""
    wanted = path or os.environ.get(_BROWSER_ENV) or os.environ.get("BROWSER_PATH")
    if wanted:
        p = Path(wanted)
        return str(p) if p.is_file() and os.access(p, os.X_OK) else None
    from choreographer.browsers.chromium import Chromium

    found = Chromium.find_browser(skip_local=False)
    return found if found and Path(found).is_file() else None


def _missing_message(path: str | os.PathLike | None = None) -> str:
    where = path or os.environ.get(_BROWSER_ENV) or os.environ.get("BROWSER_PATH")
    at = f" (nothing usable at {where})" if where else ""
    return (f"PNG/SVG/PDF export needs Chromium{at}: install it with `{CHROMIUM_HINT}` "
            "(or point CART_CHROMIUM at a Chromium/Chrome executable)")


def export_unavailable_reason(path: str | os.PathLike | None = None) -> str | None:
    """Why figures cannot be exported here, or None when they can (cheap: no browser start)."""
    if _STATE.failure:
        return _STATE.failure
    return None if find_browser(path) else _missing_message(path)


@dataclass
class _ServerState:
    path: str | None = None
    ready: bool = False
    failure: str | None = None


_STATE = _ServerState()
# kaleido's sync server pairs requests and answers through two queues; concurrent callers
# (several app sessions) could receive each other's images, so calls are serialised.
_LOCK = threading.RLock()
_START_TIMEOUT = 90.0
_TABS = 2
BATCH = 2 * _TABS  # files per batch in export_figures (progress is reported per batch)


def export_server_running() -> bool:
    import kaleido

    return _STATE.path is not None and kaleido._global_server.is_running()  # noqa: SLF001


def start_export_server(browser: str | os.PathLike | None = None) -> str:
    """Start the shared export server (once per process; later calls return at once).
    Returns the browser path; raises ExportUnavailable naming what to install."""
    import kaleido

    with _LOCK:
        if _STATE.failure:
            raise ExportUnavailable(_STATE.failure)
        path = find_browser(browser)
        if path is None:
            raise ExportUnavailable(_missing_message(browser))
        if _STATE.path == path and export_server_running():
            return path
        if export_server_running():
            kaleido.stop_sync_server(silence_warnings=True)
        # mathjax=False: no CDN fetch on a server without internet; figures use no LaTeX
        # two tabs: a batch (slide deck) renders one figure while the other tab reloads
        kaleido.start_sync_server(path=path, mathjax=False, timeout=120, n=_TABS,
                                  silence_warnings=True)
        _STATE.path, _STATE.ready = path, False
        return path


def stop_export_server() -> None:
    """Stop the export server (the CLI does this when it is done)."""
    import kaleido

    with _LOCK:
        if export_server_running():
            kaleido.stop_sync_server(silence_warnings=True)
        _STATE.path, _STATE.ready = None, False


def _server_thread_alive() -> bool:
    import kaleido

    # kaleido's server thread dies silently when Chromium fails to start, and a request would
    # then wait forever; its thread is private, so look at it defensively.
    thread = getattr(kaleido._global_server, "_thread", None)  # noqa: SLF001
    return thread is None or thread.is_alive()


def call(fig: dict, opts: dict) -> bytes:
    """One figure spec drawn with kaleido options `opts` (starting the server if needed)."""
    import kaleido

    with _LOCK:
        if not export_server_running():
            start_export_server()
        if _STATE.ready:
            return kaleido.calc_fig_sync(fig, opts=opts)
        # first request: watch for a browser that dies on start instead of waiting forever
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["out"] = kaleido.calc_fig_sync(fig, opts=opts)
            except Exception as err:  # noqa: BLE001 - handed to the caller below
                box["err"] = err

        worker = threading.Thread(target=run, daemon=True, name="export-warmup")
        worker.start()
        deadline = _now_s() + _START_TIMEOUT
        while worker.is_alive() and _now_s() < deadline:
            worker.join(0.1)
            if worker.is_alive() and not _server_thread_alive():
                break
        if worker.is_alive():
            _STATE.failure = (f"Chromium at {_STATE.path} did not start; reinstall it with "
                              f"`{CHROMIUM_HINT}` and restart")
            raise ExportUnavailable(_STATE.failure)
        if "err" in box:
            raise box["err"]
        _STATE.ready = True
        return box["out"]


def call_many(items: list[tuple[dict, dict]]) -> list[bytes]:
    """Many (spec, opts) pairs drawn as one batch on the server's tabs, in order."""
    import kaleido

    with _LOCK:
        if not items:
            return []
        if len(items) == 1 or not (_STATE.ready and export_server_running()):
            return [call(*items[0]), *call_many(items[1:])]
        with tempfile.TemporaryDirectory(prefix="cart-export-") as tmp:
            paths = [Path(tmp) / f"{i}.{opts['format']}" for i, (_, opts) in enumerate(items)]
            kaleido.write_fig_from_object_sync(
                [{"fig": spec, "opts": opts, "path": str(path)}
                 for (spec, opts), path in zip(items, paths, strict=True)],
                cancel_on_error=True)
            return [path.read_bytes() for path in paths]


def _now_s() -> float:
    return time.monotonic()
