"""Wide tables and hostile files: load time by number of columns (linear, not quadratic) and
how long the limits take to refuse each hostile shape, plus the cost of loading in a worker.

    .venv/bin/python benchmarks/hostile_files.py [--columns 1000 4000 16000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _checkout import test_helper
from _timing import best_time

from data_loaders import load_study
from data_loaders.worker import WorkerSettings, load_isolated

_corpus = test_helper("tests/bad_inputs/make_corpus.py")
gzip_bomb, wide_csv = _corpus.gzip_bomb, _corpus.wide_csv

DEMO = Path(__file__).resolve().parent.parent / "sample_data" / "demo"


def wide_study(folder: Path, n: int) -> Path:
    """n samples: a counts matrix with n sample columns and a measurements file with n extra
    columns (the two wide shapes a study meets)."""
    folder.mkdir()
    (folder / "patients.csv").write_text("subject_id\nP1\n")
    (folder / "samples.csv").write_text("sample_id,subject_id,day\n"
                                        + "".join(f"S{i},P1,{i % 100}\n" for i in range(n)))
    (folder / "rna_counts.csv").write_text(
        "gene," + ",".join(f"S{i}" for i in range(n)) + "\n"
        + "".join(f"G{g}," + ",".join("1" for _ in range(n)) + "\n" for g in range(20)))
    (folder / "measurements.csv").write_text(
        "subject_id,day,analyte,value,unit," + ",".join(f"x{i}" for i in range(n))
        + "\nP1,0,ANC,1,10^9/L," + ",".join("a" for _ in range(n)) + "\n")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--columns", type=int, nargs="+", default=[1000, 4000, 16000])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for n in args.columns:
            folder = wide_study(base / f"wide{n}", n)
            t, study = best_time(lambda folder=folder: load_study(folder), repeat=2)
            print(f"load_study, {n:>6,} sample columns + {n:,} extra columns   {t:6.2f} s "
                  f"({study.rna_counts.width - 1:,} samples)")
        hostile = base / "hostile"
        hostile.mkdir()
        (hostile / "patients.csv").write_text("subject_id\nP1\n")
        gzip_bomb(hostile / "measurements.csv.gz", unpacked_bytes=10**9)
        t, _ = best_time(lambda: load_study(hostile), repeat=2)
        print(f"refuse a 2.4 MB .csv.gz that unpacks to 1 GB                 {t:6.2f} s")
        (hostile / "measurements.csv.gz").unlink()
        wide_csv(hostile / "measurements.csv", columns=10**6)
        t, _ = best_time(lambda: load_study(hostile), repeat=2)
        print(f"refuse a 14 MB CSV with 10^6 columns                          {t:6.2f} s")
    t_direct, _ = best_time(lambda: load_study(DEMO), repeat=3)
    t_worker, _ = best_time(lambda: load_isolated(DEMO, settings=WorkerSettings()), repeat=3)
    print(f"demo study: in process {t_direct:.2f} s, in a worker process {t_worker:.2f} s")


if __name__ == "__main__":
    main()
