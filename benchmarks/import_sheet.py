"""Import of a wide lab sheet: 200 patients x 100 visits x 30 analytes (20,000 rows x 32
columns, 600,000 values) as an .xlsx workbook (and as CSV), with a patients sheet.

Each import runs as its own `python cli.py import` process, so the time is what a user waits
and the peak memory (ru_maxrss of that process) is the import's own. Then the written study is
loaded once more (`cli.py validate`), which is what the app does on opening it.

    .venv/bin/python benchmarks/import_sheet.py [--patients 200] [--visits 100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HEADERS = ["WBC (10^9/L)", "NEUT#", "LYMPH#", "MONO#", "PLT [10^9/L]", "RET#", "HGB (g/dL)",
           "RBC", "HCT", "MCV", "EO#", "BASO#", "NEUT%", "LYMPH%", "MONO%", "RET%",
           "CRP (mg/L)", "Ferritin (ug/L)", "LDH (U/L)", "ALT (U/L)", "AST (U/L)", "ALP (U/L)",
           "GGT (U/L)", "TBIL (umol/L)", "CREA (umol/L)", "ALB (g/L)", "FIB (g/L)",
           "IL-6 (pg/mL)", "IFN-γ (pg/mL)", "IL-10 (pg/mL)"]


def build(folder: Path, *, patients: int, visits: int, fmt: str, seed: int = 7) -> int:
    """Write the export; returns the number of values."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    infusion = [dt.date(2024, 1, 1) + dt.timedelta(days=int(d))
                for d in rng.integers(0, 365, patients)]
    ids = [f"P{i:03d}" for i in range(1, patients + 1)]
    with open(folder / "patients.csv", "w", encoding="utf-8") as fh:
        fh.write("patient_id,sex,age,infusion_date\n")
        for pid, day in zip(ids, infusion, strict=True):
            fh.write(f"{pid},{'MF'[int(rng.integers(0, 2))]},{int(rng.integers(18, 80))},"
                     f"{day.isoformat()}\n")
    offsets = np.linspace(-10, 720, visits).round().astype(int)
    values = rng.gamma(2.0, 2.0, size=(patients * visits, len(HEADERS))).round(2)
    rows = []
    for i, pid in enumerate(ids):
        for j, off in enumerate(offsets):
            when = infusion[i] + dt.timedelta(days=int(off))
            rows.append([pid, when.strftime("%Y/%m/%d"), *values[i * visits + j]])
    header = ["住院号", "采样日期", *HEADERS]
    if fmt == "csv":
        with open(folder / "labs.csv", "w", encoding="utf-8") as fh:
            fh.write(",".join(header) + "\n")
            for r in rows:
                fh.write(",".join(map(str, r)) + "\n")
    else:
        import xlsxwriter

        wb = xlsxwriter.Workbook(folder / "labs.xlsx", {"constant_memory": True})
        ws = wb.add_worksheet("labs")
        ws.write_row(0, 0, header)
        for k, r in enumerate(rows, start=1):
            ws.write_row(k, 0, r)
        wb.close()
    return values.size


_CHILD = """import resource, runpy, sys
sys.argv = sys.argv[1:]
code = 0
try:
    runpy.run_path("cli.py", run_name="__main__")
except SystemExit as exc:
    code = exc.code
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print("MAXRSS_KIB", max(me.ru_maxrss, kids.ru_maxrss), "CPU_S",
      me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, file=sys.stderr)
sys.exit(code)
"""


def run(args: list[str]) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS MiB, output) of one `cli.py` run (its worker
    processes included)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, "cli.py", *args], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"cli.py {' '.join(args)} exited {proc.returncode}:\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    figures = proc.stderr.rsplit("MAXRSS_KIB", 1)[1].split()
    return wall, float(figures[2]), int(figures[0]) / 1024, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--visits", type=int, default=100)
    ap.add_argument("--keep", help="folder to keep the exports and studies in")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-import-"))
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    for fmt in ("xlsx", "csv"):
        src = base / f"export_{fmt}"
        t0 = time.perf_counter()
        n = build(src, patients=args.patients, visits=args.visits, fmt=fmt)
        print(f"{fmt}: {args.patients} patients x {args.visits} visits x {len(HEADERS)} "
              f"analytes = {n:,} values ({(src / f'labs.{fmt}').stat().st_size / 1e6:.1f} MB; "
              f"built in {time.perf_counter() - t0:.1f} s)")
        out = base / f"study_{fmt}"
        wall, cpu, peak, printed = run(["import", str(src), "--out", str(out)])
        summary = [line for line in printed.splitlines() if "validation" in line]
        print(f"  cli.py import    wall {wall:5.1f} s  CPU {cpu:5.1f} s  peak RSS {peak:5.0f} MiB"
              f"   {summary[-1] if summary else ''}")
        wall, cpu, peak, printed = run(["validate", str(out), "--quiet"])
        print(f"  cli.py validate  wall {wall:5.1f} s  CPU {cpu:5.1f} s  peak RSS {peak:5.0f} MiB"
              f"   {printed.strip().splitlines()[-1]}")
    if not args.keep:
        import shutil

        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
