"""The measurement loader (polars) side by side with a plain pandas implementation.

    .venv/bin/python benchmarks/loader_vs_pandas.py --study DIR [--copies 8] [--repeat 3]

Both produce the same result from measurements.csv: read, map analyte aliases to canonical
names, convert units with the table of data_loaders/units.py, drop duplicate rows, and a
per-analyte summary (n, mean, median, min, max). The polars side is the real `load_study`
(patients + measurements only), so it also does everything pandas skips: row-level checks of
subject ids, days, numbers, units and conflicting duplicates with their findings. `--copies K`
makes the input K times larger (each copy with its own subject ids). Times are the best of
`--repeat` runs in this process, after one unmeasured warm-up of each. Target: polars >= 3x.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import polars as pl

from data_loaders import load_study
from data_loaders.analytes import ALIASES, CATALOGUE
from data_loaders.units import CONVERSIONS, unit_key

ROOT = Path(__file__).resolve().parent.parent


def make_input(study: Path, out: Path, copies: int) -> int:
    """patients.csv + measurements.csv of `study`, `copies` times over; returns the row count."""
    out.mkdir(parents=True, exist_ok=True)
    patients = pl.read_csv(study / "patients.csv", infer_schema=False)
    meas = pl.read_csv(study / "measurements.csv", infer_schema=False)
    pl.concat([patients.with_columns(pl.col("subject_id") + f"-{k}") for k in range(copies)]
              ).write_csv(out / "patients.csv")
    big = pl.concat([meas.with_columns(pl.col("subject_id") + f"-{k}") for k in range(copies)])
    big.write_csv(out / "measurements.csv")
    return big.height


def polars_loader(folder: Path) -> pl.DataFrame:
    study = load_study(folder)
    return (study.measurements.group_by("analyte")
            .agg(n=pl.len(), mean=pl.col("value").mean(), median=pl.col("value").median(),
                 min=pl.col("value").min(), max=pl.col("value").max()).sort("analyte"))


def pandas_baseline(folder: Path) -> pd.DataFrame:
    df = pd.read_csv(folder / "measurements.csv")
    names = {k.upper(): v for k, v in ALIASES.items()} | {a: a for a in CATALOGUE}
    df["analyte"] = df["analyte"].astype(str).str.strip().str.upper().map(names)
    canon = pd.DataFrame({"analyte": list(CATALOGUE),
                          "to_unit": [a.unit for a in CATALOGUE.values()]})
    table = pd.DataFrame([(a, unit_key(f), t, fac, off) for a, f, t, fac, off in CONVERSIONS],
                         columns=["only", "from_key", "to_unit", "factor", "offset"])
    df["from_key"] = df["unit"].fillna("").astype(str).map(unit_key)
    df = df.merge(canon, on="analyte", how="left")
    df.loc[df["from_key"] == "", "from_key"] = df["to_unit"].map(unit_key)
    generic = table[table["only"].isna()].drop(columns="only")
    specific = table[table["only"].notna()].rename(columns={"only": "analyte"})
    df = df.merge(specific, on=["analyte", "from_key", "to_unit"], how="left")
    df = df.merge(generic, on=["from_key", "to_unit"], how="left", suffixes=("", "_g"))
    df["factor"] = df["factor"].fillna(df["factor_g"])
    df["offset"] = df["offset"].fillna(df["offset_g"]).fillna(0.0)
    df.loc[df["factor"].isna() & (df["from_key"] == df["to_unit"].map(unit_key)), "factor"] = 1.0
    df = df[df["factor"].notna() & df["analyte"].notna()]
    df["value"] = pd.to_numeric(df["value"], errors="coerce") * df["factor"] + df["offset"]
    df["unit"] = df["to_unit"]
    keep = [c for c in ("subject_id", "day", "analyte", "value", "unit", "tissue", "time")
            if c in df.columns]
    df = df[keep].drop_duplicates()
    return (df.groupby("analyte")["value"].agg(["count", "mean", "median", "min", "max"])
            .rename(columns={"count": "n"}).reset_index().sort_values("analyte"))


def _best(fn: Callable[[Path], object], folder: Path, repeat: int) -> tuple[float, object]:
    fn(folder)
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(folder)
        best = min(best, time.perf_counter() - t)
    return best, out


def compare(study: Path, *, copies: int = 1, repeat: int = 3) -> dict:
    """Time both on `study`'s measurements (`copies` times over); check the results agree."""
    tmp = Path(tempfile.mkdtemp(prefix="robust_lvp_"))
    try:
        rows = make_input(study, tmp, copies)
        t_pl, res_pl = _best(polars_loader, tmp, repeat)
        t_pd, res_pd = _best(pandas_baseline, tmp, repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    same_n = res_pl.get_column("n").to_list() == res_pd["n"].tolist()
    same_mean = all(abs(a - b) <= 1e-6 * max(1.0, abs(b)) for a, b in
                    zip(res_pl.get_column("mean").to_list(), res_pd["mean"].tolist(),
                        strict=True))
    return {"rows": rows, "polars_s": t_pl, "pandas_s": t_pd, "ratio": t_pd / t_pl,
            "same_result": bool(same_n and same_mean), "analytes": res_pl.height}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", default=str(ROOT / "sample_data" / "demo"))
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    r = compare(Path(args.study), copies=args.copies, repeat=args.repeat)
    print(f"{r['rows']:,} measurement rows, {r['analytes']} analytes: polars loader "
          f"{r['polars_s']:.3f} s, pandas baseline {r['pandas_s']:.3f} s, ratio "
          f"{r['ratio']:.1f}x (target >= 3x), same result: {r['same_result']}")


if __name__ == "__main__":
    main()
