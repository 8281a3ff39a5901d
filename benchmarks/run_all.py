"""The performance suite: load time, every page cold and on rerun, plot payload, peak memory and
the polars loader against a pandas baseline, on generated cohorts of growing size.

    .venv/bin/python benchmarks/run_all.py            # make bench: the full suite (~20-30 min)
    .venv/bin/python benchmarks/run_all.py --quick    # make bench-quick: about 2 minutes
    .venv/bin/python benchmarks/run_all.py --data DIR --markdown OUT.md

Cohorts come from `python cli.py sample --patients N --cells M --seed 11` and are kept in
`--data` (default $BENCH_DATA or /tmp/robust_bench, e.g. 4.7 GB for 1M cells) so later runs
reuse them. Full: 5/20k, 50/20k, 200/300k, 200/1M (patients/cells). Quick: 5/20k and 50/20k,
the loader ratio on the 50-patient measurements, and one AppTest pass over the pages on the
50-patient cohort. Each measurement runs in a fresh process (benchmarks/load_study.py,
benchmarks/pages.py), so peak RSS belongs to that cohort.

Targets (DESIGN issue "Robustness and scale"): 200 patients / 300k cells: every page < 3 s cold
and < 0.5 s on rerun; 1M cells: immune landscape < 6 s cold and peak RSS < 8 GB; the polars
loader >= 3x faster than pandas.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FULL = [(5, 20_000), (50, 20_000), (200, 300_000), (200, 1_000_000)]
QUICK = [(5, 20_000), (50, 20_000)]
PAGE_COLD_S, PAGE_RERUN_S, LANDSCAPE_1M_S, RSS_1M_MB, RATIO = 3.0, 0.5, 6.0, 8 * 1024, 3.0


def cohort(data: Path, patients: int, cells: int) -> Path:
    """The generated study for (patients, cells), made once (written aside, then renamed)."""
    path = data / f"p{patients}_c{cells}"
    if (path / "patients.csv").is_file() and (path / ".complete").is_file():
        return path
    part = data / f"{path.name}.part"
    shutil.rmtree(part, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "sample", "--out", str(part),
                    "--patients", str(patients), "--cells", str(cells), "--seed", "11"],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    shutil.rmtree(path, ignore_errors=True)
    part.rename(path)
    (path / ".complete").touch()
    print(f"  generated {path.name} in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def pages(study: Path, only: str = "") -> dict:
    with tempfile.NamedTemporaryFile(prefix="robust_pages_", suffix=".json") as out:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "pages.py"), "--study", str(study),
               "--json", out.name] + (["--pages", only] if only else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=ROOT)
        return json.loads(Path(out.name).read_text())


def _machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} cores / {mem:.0f} GiB, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}; load average at start "
            f"{load:.1f}")


def run(quick: bool, data: Path) -> dict:
    from load_study import measure
    from loader_vs_pandas import compare

    data.mkdir(parents=True, exist_ok=True)
    res: dict = {"date": dt.date.today().isoformat(), "machine": _machine(), "quick": quick,
                 "cohorts": [], "ratios": []}
    for n, m in QUICK if quick else FULL:
        print(f"cohort {n} patients / {m:,} cells", flush=True)
        path = cohort(data, n, m)
        entry = {"patients": n, "cells": m, "load": measure(path)}
        print(f"  load cold {entry['load']['cold_s']:.2f} s, peak RSS "
              f"{entry['load']['peak_rss_mb']:.0f} MB", flush=True)
        if not quick or n == 50:
            entry["pages"] = pages(path)
            slow = max(entry["pages"]["pages"], key=lambda r: r["cold_s"], default=None)
            if slow:
                print(f"  pages: slowest cold {slow['title']} {slow['cold_s']:.2f} s; peak RSS "
                      f"{entry['pages']['peak_rss_mb']:,} MB", flush=True)
        res["cohorts"].append(entry)
    ratio_runs = [(50, 20_000, 1)] if quick else [(200, 300_000, 1), (200, 300_000, 8)]
    for n, m, copies in ratio_runs:
        r = compare(cohort(data, n, m), copies=copies, repeat=2 if quick else 3)
        res["ratios"].append(r)
        print(f"loader vs pandas, {r['rows']:,} rows: polars {r['polars_s']:.2f} s, pandas "
              f"{r['pandas_s']:.2f} s, ratio {r['ratio']:.1f}x", flush=True)
    return res


def targets(res: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for every target the run covers."""
    out = []
    for c in res["cohorts"]:
        rows = c.get("pages", {}).get("pages", [])
        if (c["patients"], c["cells"]) == (200, 300_000) and rows:
            worst = max(rows, key=lambda r: r["cold_s"])
            out.append(("200/300k: every page < 3 s cold",
                        f"slowest {worst['title']} {worst['cold_s']:.2f} s",
                        worst["cold_s"] < PAGE_COLD_S and not any(r["error"] for r in rows)))
            worst = max(rows, key=lambda r: r["rerun_s"])
            out.append(("200/300k: every page < 0.5 s rerun",
                        f"slowest {worst['title']} {worst['rerun_s']:.2f} s",
                        worst["rerun_s"] < PAGE_RERUN_S))
        if c["cells"] == 1_000_000 and rows:
            land = next((r for r in rows if r["page"] == "immune_landscape"), None)
            if land:
                out.append(("1M cells: immune landscape < 6 s cold", f"{land['cold_s']:.2f} s",
                            land["cold_s"] < LANDSCAPE_1M_S and not land["error"]))
            rss = max(c["pages"]["peak_rss_mb"], c["load"]["peak_rss_mb"])
            out.append(("1M cells: peak RSS < 8 GB", f"{rss / 1024:.2f} GB", rss < RSS_1M_MB))
    for r in res["ratios"]:
        out.append((f"polars loader >= 3x pandas ({r['rows']:,} rows)", f"{r['ratio']:.1f}x",
                    r["ratio"] >= RATIO and r["same_result"]))
    return out


def markdown(res: dict) -> str:
    lines = [f"Machine: {res['machine']}. Date: {res['date']}. "
             f"{'Quick subset' if res['quick'] else 'Full suite'}.", "",
             "| cohort | load cold | load warm | load peak RSS | measurement rows | cells |",
             "|---|---|---|---|---|---|"]
    for c in res["cohorts"]:
        ld = c["load"]
        lines.append(f"| {c['patients']} / {c['cells']:,} | {ld['cold_s']:.2f} s | "
                     f"{ld['warm_s']:.2f} s | {ld['peak_rss_mb']:,.0f} MB | "
                     f"{ld['measurement_rows']:,} | {ld['cells']:,} |")
    for c in res["cohorts"]:
        if "pages" not in c:
            continue
        p = c["pages"]
        lines += ["", f"Pages, {c['patients']} patients / {c['cells']:,} cells (first run of "
                  f"app.py incl. study load {p['first_run_s']:.1f} s; peak RSS "
                  f"{p['peak_rss_mb']:,} MB):", "",
                  "| page | cold | rerun | figures | plot payload | error |",
                  "|---|---|---|---|---|---|"]
        for r in p["pages"]:
            lines.append(f"| {r['title']} | {r['cold_s']:.2f} s | {r['rerun_s']:.2f} s | "
                         f"{r['figures']} | {r['payload_kb']:,.0f} kB | {r['error'] or ''} |")
    lines += ["", "| loader vs pandas | polars | pandas | ratio | same result |",
              "|---|---|---|---|---|"]
    for r in res["ratios"]:
        lines.append(f"| {r['rows']:,} rows | {r['polars_s']:.2f} s | {r['pandas_s']:.2f} s | "
                     f"{r['ratio']:.1f}x | {r['same_result']} |")
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in targets(res)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the ~2 minute subset")
    ap.add_argument("--data", default=os.environ.get("BENCH_DATA", "/tmp/robust_bench"),
                    help="where generated cohorts are kept and reused")
    ap.add_argument("--json", help="also write all figures as JSON to this file")
    ap.add_argument("--markdown", help="also write the tables as Markdown to this file")
    args = ap.parse_args()
    t0 = time.perf_counter()
    res = run(args.quick, Path(args.data))
    text = markdown(res)
    print("\n" + text)
    print(f"(suite took {time.perf_counter() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
