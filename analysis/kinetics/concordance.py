"""CAR transgene qPCR against CAR+ cells by flow: paired values, Spearman, and the
repeated-measures correlation over patients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from analysis import stats as st
from analysis.kinetics.series import SPEARMAN_PERMUTATION_MAX_N

__all__ = ["Correlation", "concordance", "spearman", "repeated_correlation", "RepeatedConcordance"]


@dataclass(frozen=True)
class Correlation:
    """Spearman rho with a permutation p (exact enumeration for n <= 8; asymptotic p above
    SPEARMAN_PERMUTATION_MAX_N pairs, `method` says which)."""

    rho: float | None
    p_value: float | None
    n: int
    method: str = "Spearman rho, permutation p"

    def describe(self) -> str:
        if self.rho is None:
            return f"n = {self.n}: too few pairs for a correlation"
        return f"Spearman rho = {self.rho:.2f}, p = {self.p_value:.3g}, n = {self.n}"


def concordance(series: pl.DataFrame, *, x: str = "CAR_QPCR", y: str = "CAR_PCT"
                ) -> pl.DataFrame:
    """Paired samples (same patient and day) of two assays: subject_id, day, x, y (plot values,
    BLQ at LLOQ/2), x_blq, y_blq, response_group when present."""
    extra = [c for c in ("response_group",) if c in series.columns]
    a = series.filter(pl.col("assay") == x).select(
        "subject_id", "day", *extra, pl.col("plot_value").alias("x"), pl.col("blq").alias("x_blq"))
    b = series.filter(pl.col("assay") == y).select(
        "subject_id", "day", pl.col("plot_value").alias("y"), pl.col("blq").alias("y_blq"))
    return (a.join(b, on=["subject_id", "day"], how="inner")
            .filter(pl.col("x").is_not_null() & pl.col("y").is_not_null())
            .sort(["subject_id", "day"]))


def spearman(frame: pl.DataFrame, *, x: str = "x", y: str = "y") -> Correlation:
    """Spearman rho of two columns (nulls dropped) with a permutation p value (asymptotic
    above SPEARMAN_PERMUTATION_MAX_N pairs)."""
    df = frame.select(x, y).drop_nulls()
    n = df.height
    if n < 3:
        return Correlation(None, None, n)
    xv, yv = df.get_column(x).to_numpy(), df.get_column(y).to_numpy()
    if np.ptp(xv) == 0 or np.ptp(yv) == 0:
        return Correlation(None, None, n, "constant values")
    rho, p, method = st.spearman(xv, yv, permutation_max_n=SPEARMAN_PERMUTATION_MAX_N)
    return Correlation(rho, p, n, method)


@dataclass(frozen=True)
class RepeatedConcordance:
    """Correlation of two assays over repeated samples of the same patients: rmcorr on log10
    values (analysis.stats.rmcorr) and one Spearman rho per patient with >= 3 samples. A
    Spearman over all samples pooled treats 57 samples of 5 patients as 57 independent
    patients and gives p values that invite over-reading."""

    rm: st.RepeatedCorrelation
    per_patient: tuple[tuple[str, float | None, int], ...]
    n_blq_excluded: int

    def short(self) -> str:
        """A figure title: the within-patient r with its sample and patient counts."""
        rm = self.rm
        if rm.r is None:
            return f"rmcorr not defined ({rm.n} samples, {rm.n_subjects} patients)"
        return (f"Repeated-measures r = {rm.r:.2f}, p = {rm.p_value:.2g} "
                f"({rm.n} samples, {rm.n_subjects} patients)")

    def describe(self) -> str:
        rm = self.rm
        if rm.r is None:
            head = f"{rm.method}: {rm.n} samples of {rm.n_subjects} patients"
        else:
            head = (f"Repeated-measures r = {rm.r:.2f} (rmcorr, log10 values), p = "
                    f"{rm.p_value:.3g}, {rm.n} samples of {rm.n_subjects} patients, "
                    f"df = {rm.dof}")
        rhos = [r for _, r, _ in self.per_patient if r is not None]
        if rhos:
            head += (f"; per-patient Spearman rho {min(rhos):.2f} to {max(rhos):.2f} "
                     f"(median {float(np.median(rhos)):.2f}, {len(rhos)} patients with >= 3 "
                     "samples)")
        if self.n_blq_excluded:
            head += f"; {self.n_blq_excluded} samples below the LLOQ left out"
        return head


def repeated_correlation(frame: pl.DataFrame, *, x: str = "x", y: str = "y",
                         subject: str = "subject_id") -> RepeatedConcordance:
    """rmcorr (Bakdash & Marusich 2017) of log10 `x` vs log10 `y` over the paired samples of
    `frame` (concordance output), plus a Spearman rho per patient. Samples below the LLOQ on
    either assay (x_blq / y_blq) are left out: their LLOQ/2 is imputed, not measured."""
    df = frame.select(subject, x, y, *[c for c in ("x_blq", "y_blq") if c in frame.columns]
                      ).drop_nulls([subject, x, y])
    blq = pl.lit(False)
    for c in ("x_blq", "y_blq"):
        if c in df.columns:
            blq = blq | pl.col(c).fill_null(False)
    n_all = df.height
    df = df.filter(~blq & (pl.col(x) > 0) & (pl.col(y) > 0))
    lx, ly = np.log10(df.get_column(x).to_numpy()), np.log10(df.get_column(y).to_numpy())
    subj = df.get_column(subject).cast(pl.String).to_numpy()
    rm = st.rmcorr(lx, ly, subject=subj)
    per = []
    for sid in sorted(set(subj.tolist())):
        m = subj == sid
        if m.sum() >= 3:
            rho, _, _ = st.spearman(lx[m], ly[m])
            per.append((sid, rho, int(m.sum())))
    return RepeatedConcordance(rm, tuple(per), n_all - df.height)
