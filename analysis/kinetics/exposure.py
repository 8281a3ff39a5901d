"""Exposure against response and CRS grade: the per-patient frame and its tests (Mann-Whitney by
response group, Spearman with CRS grade)."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from analysis import stats as st
from analysis.kinetics.concordance import spearman
from analysis.vocab import NON_RESPONDER, RESPONDER

__all__ = ["exposure_response", "exposure_tests"]


def exposure_response(params: pl.DataFrame, *, groups: pl.DataFrame, crs: pl.DataFrame,
                      assay: str = "CAR_QPCR") -> pl.DataFrame:
    """One row per patient for one assay: exposure columns of `params` with best_response,
    response_group (from `groups`) and crs_max_grade (from toxicity.crs_table)."""
    p = params.filter(pl.col("assay") == assay)
    g = groups.select("subject_id", "best_response", "response_group")
    c = crs.select("subject_id", "crs_max_grade") if "crs_max_grade" in crs.columns else \
        pl.DataFrame(schema={"subject_id": pl.String, "crs_max_grade": pl.Int64})
    return (p.join(g, on="subject_id", how="left").join(c, on="subject_id", how="left")
            .sort("subject_id"))


P_VALUE_KIND = {"Mann-Whitney exact": "exact p", "permutation (all splits)":
           "exact permutation p (ties)",
           f"permutation ({st.N_PERMUTATIONS} random splits)":
           f"permutation p ({st.N_PERMUTATIONS} random splits, ties)",
           "Mann-Whitney (normal approx.)": "asymptotic p"}


def exposure_tests(frame: pl.DataFrame, *, parameters: Iterable[str] = ("cmax", "auc_0_28"),
                   exact_max_n: int = st.EXACT_MAX_N) -> pl.DataFrame:
    """Per exposure parameter: Responder vs Non-responder (Mann-Whitney, exact or permutation
    p; asymptotic above MWU_EXACT_MAX_N patients) and against CRS max grade (Spearman,
    permutation p; asymptotic above SPEARMAN_PERMUTATION_MAX_N). Columns: parameter, versus, test,
    statistic, p_value, n, detail."""
    rows = []
    for par in parameters:
        if par not in frame.columns:
            continue
        df = frame.filter(pl.col(par).is_not_null() & pl.col(par).is_finite())
        a = df.filter(pl.col("response_group") == RESPONDER).get_column(par).to_numpy()
        b = df.filter(pl.col("response_group") == NON_RESPONDER).get_column(par).to_numpy()
        detail = f"{RESPONDER} n={len(a)} vs {NON_RESPONDER} n={len(b)}"
        if len(a) and len(b):
            mw = st.mann_whitney(a, b, exact_max_n=exact_max_n)
            stat, p, test = mw.u, mw.p_value, f"Mann-Whitney U, {P_VALUE_KIND[mw.test]}"
            detail += f": U = {stat:g}, p = {p:.3g}"
        else:
            stat, p, test = None, None, "Mann-Whitney U: needs both groups"
        rows.append({"parameter": par, "versus": "response_group", "test": test,
                     "statistic": stat, "p_value": p, "n": len(a) + len(b), "detail": detail})
        if "crs_max_grade" in df.columns:
            corr = spearman(df, x=par, y="crs_max_grade")
            rows.append({"parameter": par, "versus": "crs_max_grade",
                         "test": corr.method if corr.rho is not None
                         else f"Spearman: {corr.method if corr.n >= 3 else 'n < 3'}",
                         "statistic": corr.rho, "p_value": corr.p_value, "n": corr.n,
                         "detail": corr.describe()})
    schema = {"parameter": pl.String, "versus": pl.String, "test": pl.String,
              "statistic": pl.Float64, "p_value": pl.Float64, "n": pl.Int64,
              "detail": pl.String}
    out = pl.DataFrame(rows, schema=schema)
    return out.with_columns(pl.col("statistic", "p_value").fill_nan(None))
