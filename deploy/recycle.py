"""Recycle app processes whose memory passed a limit, gently.

A long-lived Streamlit process grows: every session's state, cached figures of many
cohorts, fragmentation of the heap. systemd's MemoryMax stops a process the hard way (every
session on it breaks at once). This runs every minute (cart-explorer-recycle.timer) and
restarts, at most one per run, the `cart-explorer@PORT` process with the largest resident
memory above `--limit-mb`, and only while another app process answers its health check, so
its sessions reconnect to a live process (nginx sends them on) and the restarted one comes
back empty. Memory is the sum of the resident sizes of the unit's processes (its cgroup:
the Streamlit process, study-load workers, a local jobs cluster).

    python deploy/recycle.py --limit-mb 4096 [--base-path explorer] [--dry-run]

One JSON line per decision goes to the journal:
{"event":"recycle","unit":"cart-explorer@8501.service","rss_mb":4301,"limit_mb":4096}.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

UNITS = "cart-explorer@*.service"


def choose(rss_mb: Mapping[str, float], healthy: set[str], *, limit_mb: float) -> str | None:
    """The unit to restart now: the largest above the limit, provided another unit is
    healthy (else None: restarting the only live process would cut every session)."""
    over = sorted((u for u, mb in rss_mb.items() if mb > limit_mb), key=lambda u: -rss_mb[u])
    for unit in over:
        if healthy - {unit}:
            return unit
    return None


def _systemctl(*args: str) -> str:
    return subprocess.run(["systemctl", *args], check=True, capture_output=True,
                          text=True).stdout


def units() -> list[str]:
    out = _systemctl("list-units", "--type=service", "--state=active", "--no-legend",
                     "--plain", UNITS)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


CGROUP_ROOT = Path("/sys/fs/cgroup")       # the unified (v2) hierarchy systemd mounts


def unit_pids(unit: str) -> list[int]:
    """The processes of the unit's cgroup (the unit's main process and all it started)."""
    group = _systemctl("show", "-p", "ControlGroup", "--value", unit).strip()
    if not group:
        return []
    try:
        text = (CGROUP_ROOT / group.lstrip("/") / "cgroup.procs").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split() if p.isdigit()]


def rss_mb(pids: list[int]) -> float:
    """The summed resident memory (VmRSS of /proc/PID/status) of `pids`, in MB; a process
    that ended meanwhile counts nothing."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])      # kB
        except OSError:
            continue                                   # the process just ended
    return total / 1024


def unit_rss_mb(unit: str) -> float:
    """Resident memory of every process in the unit's cgroup, in MB."""
    return rss_mb(unit_pids(unit))


def port_of(unit: str) -> str:
    return unit.split("@", 1)[1].removesuffix(".service")


def is_healthy(unit: str, *, base_path: str = "") -> bool:
    base = f"/{base_path.strip('/')}" if base_path.strip("/") else ""
    url = f"http://127.0.0.1:{port_of(unit)}{base}/_stcore/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit-mb", type=float, required=True,
                   help="restart a process above this resident memory (MB)")
    p.add_argument("--base-path", default="", help="Streamlit baseUrlPath (health check)")
    p.add_argument("--wait", type=float, default=120,
                   help="seconds to wait for the restarted process to answer")
    p.add_argument("--dry-run", action="store_true", help="say what would be restarted")
    args = p.parse_args(argv)
    found = units()
    rss = {u: unit_rss_mb(u) for u in found}
    healthy = {u for u in found if is_healthy(u, base_path=args.base_path)}
    unit = choose(rss, healthy, limit_mb=args.limit_mb)
    over = [u for u, mb in rss.items() if mb > args.limit_mb]
    if unit is None:
        if over:
            print(json.dumps({"event": "recycle_deferred", "units": over,
                              "reason": "no other app process is healthy",
                              "limit_mb": args.limit_mb}))
        return 0
    record = {"event": "recycle", "unit": unit, "rss_mb": round(rss[unit]),
              "limit_mb": args.limit_mb, "dry_run": args.dry_run}
    print(json.dumps(record), flush=True)
    if args.dry_run:
        return 0
    _systemctl("restart", unit)
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        if is_healthy(unit, base_path=args.base_path):
            return 0
        time.sleep(2)
    print(json.dumps({"event": "recycle_unhealthy", "unit": unit}), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
