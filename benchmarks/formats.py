"""How long the format readers take on the real public files, and what converting once buys.

    .venv/bin/python benchmarks/formats.py [--data ../shared/data] [--repeat 5]

Prints the median wall time of each reader, of loading a study that reads the SDTM .xpt files
on every load ([[sources]] in study.toml), and of loading the same study after
`python cli.py import` (canonical Parquet).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _timing import median_time

from cli import main as cli_main
from data_loaders import load_study
from data_loaders.errors import ValidationReport
from data_loaders.formats.airr import read_10x_vdj, read_airr
from data_loaders.formats.maf import read_maf
from data_loaders.formats.olink import read_olink
from data_loaders.formats.sdtm import read_sdtm
from data_loaders.formats.tenx import to_anndata

ROOT = Path(__file__).resolve().parent.parent


def _median(fn: Callable[[], object], repeat: int) -> float:
    return median_time(fn, repeat=repeat)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    d = Path(a.data)
    rep = ValidationReport
    cases = {
        "sdtm (dm, ae, ex, lb .xpt; 16,120 records)":
            lambda: read_sdtm(d / "sdtm", {"treatments": {"XANOMELINE": "infusion"}}, rep()),
        "olink (133 rows)": lambda: read_olink(d / "proteomics" /
                                               "npx_data_long_csv_first133rows.csv", {}, rep()),
        "airr (9 rearrangements)": lambda: read_airr(d / "tcr" / "airr_good_rearrangement.tsv",
                                                     {"sample_id": "S"}, rep()),
        "10x_vdj (4,004 contigs)": lambda: read_10x_vdj(
            d / "tcr" / "vdj_nextgem_hs_pbmc3_t_filtered_contig_annotations.csv.gz",
            {"sample_id": "S"}, rep()),
        "maf (2,207 variants)": lambda: read_maf(d / "mutations" / "tcga_laml.maf.gz", {}, rep()),
        "10x h5 -> AnnData (1,107 cells)": lambda: to_anndata(
            d / "10x" / "filtered_feature_bc_matrix.h5", {"sample_id": "S"}, None, rep()),
    }
    for name, fn in cases.items():
        fn()  # warm imports
        print(f"{name:48s} {_median(fn, a.repeat) * 1000:8.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sources"
        shutil.copytree(d / "sdtm", src / "sdtm")
        (src / "study.toml").write_text('[[sources]]\nformat = "sdtm"\npath = "sdtm"\n'
                                        'options = { treatments = { XANOMELINE = "infusion" } }\n')
        t_src = _median(lambda: load_study(src), a.repeat)
        out = Path(tmp) / "imported"
        t0 = time.perf_counter()
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            cli_main(["import", "--from", "sdtm", str(d / "sdtm"), "--out", str(out),
                      "--option", 'treatments={XANOMELINE="infusion"}'])
        t_imp = time.perf_counter() - t0
        t_parq = _median(lambda: load_study(out), a.repeat)
    print(f"{'load_study, SDTM read on every load':48s} {t_src * 1000:8.1f} ms")
    print(f"{'cli import --from sdtm (once)':48s} {t_imp * 1000:8.1f} ms")
    print(f"{'load_study after import (Parquet)':48s} {t_parq * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
