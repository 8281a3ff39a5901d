"""Server-side time of the Patient page (AppTest): cold, warm rerun, and the next patient.

    .venv/bin/python benchmarks/patient_page.py [--study DIR] [--patients N] [--repeat R]

Without --study the demo is used; `--patients N` first writes a synthetic cohort of N patients
with `python cli.py sample` into a temporary folder under /tmp (removed afterwards). One
process: the study is loaded by the first run (reported apart as `first run`), then the
analysis caches are cleared and the Patient page is opened for the first patient ("cold": all
but the loaded Study is computed), run again unchanged ("warm": a rerun), and stepped to the
next patient with the Next button (a patient not seen before: its views are computed, the
study-wide caches are not cleared). Browser drawing is not included.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pages import clear_analysis_caches, real_navigation

ROOT = Path(__file__).resolve().parent.parent


def measure(study: Path, *, repeat: int) -> dict:
    os.environ["STUDY_DIR"] = str(study)
    os.environ.pop("STUDIES_ROOT", None)
    real_navigation()
    from streamlit.testing.v1 import AppTest

    t0 = time.perf_counter()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=900)
    at.run()
    first = time.perf_counter() - t0
    cold, warm, step = [], [], []
    for _ in range(repeat):
        clear_analysis_caches()
        t = time.perf_counter()
        at.switch_page("pages/patient.py").run()
        cold.append(time.perf_counter() - t)
        assert not at.exception, at.exception
        t = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - t)
        t = time.perf_counter()
        at.button(key="pt-next").click().run()
        step.append(time.perf_counter() - t)
        assert not at.exception, at.exception
        at.button(key="pt-prev").click().run()
    n = len(at.selectbox(key="pt-subject").options)
    return {"study": str(study), "patients": n, "first_run_s": first,
            "cold_s": statistics.median(cold), "warm_s": statistics.median(warm),
            "next_patient_s": statistics.median(step)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", default=None)
    ap.add_argument("--patients", type=int, default=None,
                    help="generate a synthetic cohort of this size in /tmp first")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = None
    if args.patients:
        tmp = Path(tempfile.mkdtemp(prefix="patient_bench_", dir="/tmp"))
        t = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "cli.py"), "sample", "--out", str(tmp / "s"),
                        "--patients", str(args.patients)], check=True, capture_output=True)
        print(f"generated {args.patients} patients in {time.perf_counter() - t:.1f} s")
        study = tmp / "s"
    else:
        study = Path(args.study or ROOT / "sample_data" / "demo")
    try:
        r = measure(study, repeat=args.repeat)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"{r['study']} ({r['patients']} patients), load average {load:.1f}")
    print(f"  first run (study load + default page) {r['first_run_s']:6.2f} s")
    print(f"  Patient page cold                     {r['cold_s']:6.2f} s   (median of "
          f"{args.repeat})")
    print(f"  Patient page warm (rerun)             {r['warm_s']:6.2f} s")
    print(f"  next patient (not seen before)        {r['next_patient_s']:6.2f} s")


if __name__ == "__main__":
    main()
