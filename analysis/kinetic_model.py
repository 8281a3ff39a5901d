"""A cellular-kinetics model of CAR-T expansion and contraction, fitted per patient (next to NCA).

One job: fitting this one model per patient (likelihood with values below the LLOQ censored,
bounds, the Tmax profile, the pooled residual error) and drawing its curves.

The piecewise model used for CAR-T products (Stein et al., CPT Pharmacometrics Syst Pharmacol
2019;8:285, tisagenlecleucel; also Mueller et al., Clin Cancer Res 2018), on the transgene level
C(t) after infusion (day 0):

    C(t) = Cmax * exp(-rho * (Tmax - t))                                   t <= Tmax
    C(t) = Cmax * ((1 - B) * exp(-alpha * (t - Tmax)) + B * exp(-beta * (t - Tmax)))   t > Tmax

exponential expansion at rate rho up to Tmax, then a bi-exponential decline: a fast contraction
(alpha) and a slow persistence phase (beta < alpha) holding the fraction B of the peak. Reported:
Cmax, Tmax, doubling time ln2/rho, contraction half-life ln2/alpha, persistence half-life ln2/beta
and the persistent fraction B, each with a 95% confidence interval.

Fit: maximum likelihood on the natural-log scale, ln y ~ Normal(ln C(t), sigma^2). Values below
the lower limit of quantification (BLQ: value < lloq, or value <= 0 with a known lloq) are
**censored**, not imputed: each contributes P(ln y < ln LLOQ) = Phi((ln LLOQ - ln C(t)) / sigma)
(Tobit likelihood; Beal's M3 method, J Pharmacokinet Pharmacodyn 2001;28:481). Values <= 0
without an LLOQ cannot be censored and are left out (counted in `n_excluded`). Only samples
after the infusion (day > 0) are fitted: the day-0 sample is drawn before the cells are given.

The residual SD sigma is one per assay, shared by the patients fitted together (`fit_all`):
each patient is first fitted with sigma = 0.35 (about 35% CV), sigma is then the joint maximum
likelihood estimate given those fits (scaled by sqrt(n / (n - 6 * patients)) for the degrees of
freedom the curves use, as in least squares), and every patient is fitted again with it. This is the
error model of population fits of this model; with 8-12 samples per patient a patient's own
sigma would let the seven-parameter curve interpolate its points. `fit_kinetic_model` alone
estimates sigma per patient unless one is given.

The six curve parameters are optimised within bounds on a transformed scale (ln Cmax, Tmax,
ln rho, ln beta, ln(alpha - beta), logit B) with scipy.optimize L-BFGS-B from several starts
(the observed peak day and its neighbours for Tmax). Uncertainty: Wald intervals from the
observed information (the numerical Hessian of the negative log-likelihood at the optimum,
conditional on sigma and on Tmax, whose likelihood has a kink wherever it crosses a sampling
day), mapped to each reported quantity by the delta method on its log (or logit
for B) scale, so intervals stay positive; Tmax gets a profile-likelihood interval (bisection
for 2 * delta NLL = 3.84). With 5-15 samples per patient these are approximate;
the table says how they were made (`ci_method`).

A fit is **not converged** (status says why, no parameters or curve are reported) when there are
too few quantifiable values, the optimiser fails, a parameter ends at a bound of its search
range (the data do not identify it, e.g. a flat series has no expansion to estimate), or the
information matrix is not positive definite.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from scipy import optimize, special, stats
from threadpoolctl import threadpool_limits

from analysis.kinetics import before_hsct, kinetic_series
from analysis.post_hsct import hsct_days
from analysis.registry import Option, derived_table
from analysis.vocab import DayWindow

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["KineticFit", "MODEL_COLUMNS", "MIN_QUANTIFIED", "SIGMA_START", "fit_kinetic_model",
           "fit_all", "pooled_sigma", "fits_table",
           "kinetic_model_table", "model_curve", "model_curves", "predict"]

MIN_QUANTIFIED = 5      # quantifiable values needed for 7 parameters (with censored ones)
_Z = stats.norm.ppf(0.975)
_NAMES = ("ln_cmax", "tmax", "ln_rho", "ln_beta", "ln_dab", "logit_b", "ln_sigma")
MODEL_COLUMNS = (
    "subject_id", "assay", "status", "converged", "n_fitted", "n_blq", "n_excluded",
    "cmax", "cmax_lo", "cmax_hi", "tmax", "tmax_lo", "tmax_hi",
    "doubling_time", "doubling_time_lo", "doubling_time_hi",
    "half_life_contraction", "half_life_contraction_lo", "half_life_contraction_hi",
    "half_life_persistence", "half_life_persistence_lo", "half_life_persistence_hi",
    "persistent_fraction", "persistent_fraction_lo", "persistent_fraction_hi",
    "sigma_log10", "ci_method",
)
CI_METHOD = ("95% Wald CI from the observed information (delta method on log/logit scale), "
             "Tmax by profile likelihood; conditional on the pooled residual SD")


@dataclass(frozen=True)
class KineticFit:
    """One patient's fit. `theta` holds the transformed parameters (see `_NAMES`) when it
    converged; `status` is "converged" or "not converged: <reason>"."""

    subject_id: str
    assay: str
    status: str
    n_fitted: int
    n_blq: int
    n_excluded: int = 0
    theta: tuple[float, ...] | None = None
    estimates: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    sigma: float | None = None

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    def row(self) -> dict[str, object]:
        out: dict[str, object] = {"subject_id": self.subject_id, "assay": self.assay,
                                  "status": self.status, "converged": self.converged,
                                  "n_fitted": self.n_fitted, "n_blq": self.n_blq,
                                  "n_excluded": self.n_excluded}
        for name in ("cmax", "tmax", "doubling_time", "half_life_contraction",
                     "half_life_persistence", "persistent_fraction"):
            est, lo, hi = self.estimates.get(name, (None, None, None))
            out.update({name: est, f"{name}_lo": lo, f"{name}_hi": hi})
        out["sigma_log10"] = None if self.sigma is None else self.sigma / math.log(10)
        out["ci_method"] = CI_METHOD if self.converged else None
        return out


# ---- the model -------------------------------------------------------------------------------
def _unpack(theta: np.ndarray) -> tuple[float, float, float, float, float, float, float]:
    ln_cmax, tmax, ln_rho, ln_beta, ln_dab, logit_b, ln_sigma = theta
    beta = math.exp(ln_beta)
    alpha = beta + math.exp(ln_dab)
    b = 1.0 / (1.0 + math.exp(-logit_b))
    return ln_cmax, tmax, math.exp(ln_rho), alpha, beta, b, math.exp(ln_sigma)


def _ln_c(theta: np.ndarray, t: np.ndarray) -> np.ndarray:
    ln_cmax, tmax, rho, alpha, beta, b, _ = _unpack(theta)
    dt = t - tmax
    rise = ln_cmax + rho * dt
    with np.errstate(over="ignore"):
        fall = ln_cmax + np.logaddexp(math.log1p(-b) - alpha * np.maximum(dt, 0),
                                      math.log(b) - beta * np.maximum(dt, 0))
    return np.where(dt <= 0, rise, fall)


def predict(fit: KineticFit, days: Iterable[float]) -> np.ndarray:
    """Model level C(t) at `days` (NaN everywhere when the fit did not converge)."""
    t = np.asarray(list(days), dtype=float)
    if not fit.converged or fit.theta is None:
        return np.full(t.shape, np.nan)
    return np.exp(_ln_c(np.asarray(fit.theta), t))


def _nll(theta: np.ndarray, t_q: np.ndarray, y_q: np.ndarray, t_c: np.ndarray,
         l_c: np.ndarray) -> float:
    sigma = math.exp(theta[-1])
    mu_q = _ln_c(theta, t_q)
    r = (y_q - mu_q) / sigma
    val = 0.5 * float(r @ r) + len(y_q) * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
    if len(t_c):
        val -= float(special.log_ndtr((l_c - _ln_c(theta, t_c)) / sigma).sum())
    return val if math.isfinite(val) else 1e300


def _hessian(f: object, x: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    n = len(x)
    h = 1e-4 * np.maximum(1.0, np.abs(x))
    out = np.empty((n, n))
    f0 = f(x)  # type: ignore[operator]
    for i in range(n):
        for j in range(i, n):
            if i == j:
                e = np.zeros(n)
                e[i] = h[i]
                v = (f(x + e) - 2 * f0 + f(x - e)) / h[i] ** 2  # type: ignore[operator]
            else:
                ei = np.zeros(n)
                ej = np.zeros(n)
                ei[i], ej[j] = h[i], h[j]
                v = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)  # type: ignore[operator]
                     + f(x - ei - ej)) / (4 * h[i] * h[j])  # type: ignore[operator]
            out[i, j] = out[j, i] = v
    return out


def _derived(theta: np.ndarray) -> dict[str, float]:
    """Reported quantities on their interval scale (log, or logit for B; Tmax as is)."""
    ln_cmax, tmax, rho, alpha, beta, b, _ = _unpack(theta)
    ln2 = math.log(2)
    return {"cmax": ln_cmax, "tmax": tmax, "doubling_time": math.log(ln2 / rho),
            "half_life_contraction": math.log(ln2 / alpha),
            "half_life_persistence": math.log(ln2 / beta),
            "persistent_fraction": math.log(b / (1 - b))}


def _back(name: str, v: float) -> float:
    if name == "tmax":
        return v
    if name == "persistent_fraction":
        return float(special.expit(v))
    return math.exp(min(v, 700.0))


# ---- fitting ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Data:
    t_q: np.ndarray
    y_q: np.ndarray
    t_c: np.ndarray
    l_c: np.ndarray
    t_all: np.ndarray
    n_excluded: int


def _data(series: pl.DataFrame) -> _Data:
    s = series.filter(pl.col("day") > 0).sort("day")
    t = s.get_column("day").cast(pl.Float64).to_numpy()
    v = s.get_column("value").cast(pl.Float64).to_numpy()
    lloq = (s.get_column("lloq").cast(pl.Float64).to_numpy() if "lloq" in s.columns
            else np.full(len(t), np.nan))
    has_lloq = np.isfinite(lloq) & (lloq > 0)
    blq = (v <= 0) | (has_lloq & (v < np.where(has_lloq, lloq, 0)))
    cens = blq & has_lloq
    return _Data(t[~blq], np.log(v[~blq]), t[cens], np.log(lloq[cens]), t,
                 int((blq & ~has_lloq).sum()))


def _bounds(d: _Data) -> list[tuple[float, float]]:
    return [(float(d.y_q.min()) - 1.0, float(d.y_q.max()) + 5.0),
            (float(min(d.t_all.min(), 1.0)) * 0.5, float(d.t_all.max())),
            (math.log(0.01), math.log(20.0)),
            (math.log(1e-5), math.log(1.0)),
            (math.log(1e-4), math.log(5.0)),
            (-12.0, 4.0),
            (math.log(0.01), math.log(5.0))]


def _optimise(d: _Data, sigma: float | None, x0: np.ndarray | None = None
              ) -> tuple[np.ndarray, bool, str]:
    """ML estimate of the full theta (sigma fixed when given); success flag and message."""
    bounds = _bounds(d)
    if sigma is None:
        def nll(x: np.ndarray) -> float:
            return _nll(x, d.t_q, d.y_q, d.t_c, d.l_c)
        b = bounds
    else:
        ln_s = math.log(sigma)

        def nll(x: np.ndarray) -> float:
            return _nll(np.append(x, ln_s), d.t_q, d.y_q, d.t_c, d.l_c)
        b = bounds[:-1]
    lo, hi = np.array([x[0] for x in b]), np.array([x[1] for x in b])
    starts = []
    if x0 is not None:
        starts.append(np.clip(x0[:len(b)], lo, hi))
    else:
        i_peak = int(np.argmax(d.y_q))
        for i in range(max(0, i_peak - 1), min(len(d.t_q), i_peak + 2)):
            x = np.array([float(d.y_q.max()), float(d.t_q[i]), math.log(0.5), math.log(0.01),
                          math.log(0.1), -3.0, math.log(0.35)])[:len(b)]
            starts.append(np.clip(x, lo, hi))
    best = None
    for x in starts:
        res = optimize.minimize(nll, x, method="L-BFGS-B", bounds=b)
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    res = best
    theta = np.asarray(res.x) if sigma is None else np.append(res.x, math.log(sigma))
    ok = bool(np.isfinite(res.fun) and res.fun < 1e299 and res.success)
    return theta, ok, str(res.message)


def fit_kinetic_model(series: pl.DataFrame, *, subject_id: str = "", assay: str = "CAR_QPCR",
                      sigma: float | None = None, min_quantified: int = MIN_QUANTIFIED,
                      _start: np.ndarray | None = None) -> KineticFit:
    """Fit one patient's series (columns day, value, lloq; analysis.kinetics.prepare_series
    shape). BLQ values are censored at their LLOQ (Tobit); see the module docstring.

    `sigma` is the residual SD on the natural-log scale: None estimates it from this patient's
    values (7 parameters), a number fixes it (6; `fit_all` passes the pooled estimate)."""
    with threadpool_limits(limits=1):
        return _fit(series, subject_id=subject_id, assay=assay, sigma=sigma,
                    min_quantified=min_quantified, start=_start)


def _fit(series: pl.DataFrame, *, subject_id: str, assay: str, sigma: float | None,
         min_quantified: int, start: np.ndarray | None) -> KineticFit:
    d = _data(series)
    base = {"subject_id": subject_id, "assay": assay, "n_fitted": len(d.t_q) + len(d.t_c),
            "n_blq": len(d.t_c), "n_excluded": d.n_excluded}
    if len(d.t_q) < min_quantified:
        return KineticFit(status=f"not converged: {len(d.t_q)} quantifiable value(s) after "
                          f"infusion, at least {min_quantified} are needed for the model",
                          **base)
    theta, ok, message = _optimise(d, sigma, start)
    if not ok:
        return KineticFit(status=f"not converged: optimiser stopped ({message})", theta=None,
                          **base)
    n_free = len(_NAMES) if sigma is None else len(_NAMES) - 1
    bounds = _bounds(d)
    # A parameter at the edge of its range (sigma excepted: a near-perfect fit is fine) is not
    # identified by the data.
    at_bound = [n for n, x, (lo, hi) in zip(_NAMES[:-1], theta[:-1], bounds[:-1], strict=True)
                if min(abs(x - lo), abs(hi - x)) < 1e-3 * max(1.0, hi - lo)]
    if at_bound:
        what = {"ln_cmax": "peak level", "tmax": "time of peak", "ln_rho": "expansion rate",
                "ln_beta": "persistence rate", "ln_dab": "contraction rate",
                "logit_b": "persistent fraction"}
        return KineticFit(status="not converged: " + ", ".join(what[n] for n in at_bound)
                          + " not identified by the data (estimate at the edge of its range)",
                          **base)

    # Wald intervals for the curve parameters come from the information matrix with Tmax held
    # at its estimate (the likelihood has a kink in Tmax wherever Tmax crosses a sampling day,
    # so its second derivative there is not defined); Tmax gets a profile-likelihood interval.
    keep = [k for k in range(n_free) if k != 1]

    def nll(x: np.ndarray) -> float:
        full = theta.copy()
        full[keep] = x
        return _nll(full, d.t_q, d.y_q, d.t_c, d.l_c)

    hess = _hessian(nll, theta[keep])
    try:
        eig = np.linalg.eigvalsh(hess)
        if not np.all(np.isfinite(eig)) or eig.min() <= 1e-10 * max(1.0, abs(eig.max())):
            raise np.linalg.LinAlgError
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return KineticFit(status="not converged: information matrix not positive definite "
                          "(parameters not identifiable from these values)", **base)
    centre = _derived(theta)
    estimates: dict[str, tuple[float, float, float]] = {}
    for name, value in centre.items():
        if name == "tmax":
            continue
        grad = np.empty(len(keep))
        for j, k in enumerate(keep):
            h = 1e-5 * max(1.0, abs(theta[k]))
            e = np.zeros(len(theta))
            e[k] = h
            grad[j] = (_derived(theta + e)[name] - _derived(theta - e)[name]) / (2 * h)
        se = math.sqrt(max(float(grad @ cov @ grad), 0.0))
        estimates[name] = (_back(name, value), _back(name, value - _Z * se),
                           _back(name, value + _Z * se))
    estimates["tmax"] = (float(theta[1]), *_tmax_profile(d, theta, n_free, bounds))
    return KineticFit(status="converged", theta=tuple(float(x) for x in theta),
                      estimates=estimates, sigma=math.exp(theta[-1]), **base)


def _tmax_profile(d: _Data, theta: np.ndarray, n_free: int,
                  bounds: list[tuple[float, float]]) -> tuple[float, float]:
    """95% profile-likelihood interval of Tmax: where 2 * (profile NLL - minimum) = 3.84, found
    by bisection on each side (the other curve parameters re-optimised, sigma as fitted)."""
    keep = [k for k in range(n_free) if k != 1]
    b = [bounds[k] for k in keep]
    base = _nll(theta, d.t_q, d.y_q, d.t_c, d.l_c)
    limit = stats.chi2.ppf(0.95, 1) / 2

    def excess(tm: float) -> float:
        def nll(x: np.ndarray) -> float:
            full = theta.copy()
            full[keep] = x
            full[1] = tm
            return _nll(full, d.t_q, d.y_q, d.t_c, d.l_c)
        res = optimize.minimize(nll, theta[keep], method="L-BFGS-B", bounds=b,
                                options={"maxiter": 200})
        return float(res.fun) - base - limit

    out = []
    for edge in (bounds[1][0], bounds[1][1]):
        inside, outside = float(theta[1]), float(edge)
        if excess(outside) < 0:
            out.append(outside)  # the interval reaches the edge of the search range
            continue
        for _ in range(8):
            mid = 0.5 * (inside + outside)
            if excess(mid) < 0:
                inside = mid
            else:
                outside = mid
        out.append(0.5 * (inside + outside))
    return out[0], out[1]


SIGMA_START = 0.35   # ln scale, about 35% CV: the first pass of the pooled estimate


def pooled_sigma(series: pl.DataFrame, *, assay: str = "CAR_QPCR",
                 min_quantified: int = MIN_QUANTIFIED) -> float | None:
    """The residual SD (natural-log scale) shared by the patients of `series`: each patient is
    fitted with sigma = SIGMA_START, then sigma is the joint ML estimate given those fits
    (censored values included), corrected for degrees of freedom. None when no patient has
    enough quantifiable values."""
    parts = []
    for (_sid,), g in series.filter(pl.col("assay") == assay).group_by(["subject_id"]):
        d = _data(g)
        if len(d.t_q) < min_quantified:
            continue
        theta, ok, _ = _optimise(d, SIGMA_START)
        if ok:
            parts.append((d, theta))
    if not parts:
        return None

    def total(ln_s: float) -> float:
        return sum(_nll(np.append(th[:-1], ln_s), d.t_q, d.y_q, d.t_c, d.l_c)
                   for d, th in parts)

    res = optimize.minimize_scalar(total, bounds=(math.log(0.01), math.log(5.0)),
                                   method="bounded")
    # The ML estimate divides by the number of values, not by the degrees of freedom left
    # after six curve parameters per patient: corrected as in least squares (n / (n - p)).
    n = sum(len(d.t_q) + len(d.t_c) for d, _ in parts)
    p = 6 * len(parts)
    return float(math.exp(res.x) * (math.sqrt(n / (n - p)) if n > p else 1.0))


def fit_all(series: pl.DataFrame, *, assay: str = "CAR_QPCR", sigma: float | None = None,
            min_quantified: int = MIN_QUANTIFIED) -> list[KineticFit]:
    """One fit per patient of `assay` in a kinetic_series frame, all with one residual SD:
    `sigma` when given, else `pooled_sigma` of these patients. One error model per assay, as in
    population fits of this model (Stein et al. 2019): with 8-12 samples per patient a
    patient's own sigma would let the seven-parameter curve interpolate its points."""
    s = series.filter(pl.col("assay") == assay)
    # Tiny problems: a multi-threaded BLAS only adds synchronisation cost (ten times slower
    # on a shared machine), so the fits run single-threaded.
    with threadpool_limits(limits=1):
        if sigma is None:
            sigma = pooled_sigma(s, assay=assay, min_quantified=min_quantified) or SIGMA_START
        return [fit_kinetic_model(g, subject_id=str(sid), assay=assay, sigma=sigma,
                                  min_quantified=min_quantified)
                for (sid,), g in s.group_by(["subject_id"], maintain_order=True)]


def fits_table(fits: list[KineticFit]) -> pl.DataFrame:
    schema = {c: (pl.String if c in ("subject_id", "assay", "status", "ci_method")
                  else pl.Boolean if c == "converged"
                  else pl.Int64 if c.startswith("n_") else pl.Float64) for c in MODEL_COLUMNS}
    if not fits:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame([f.row() for f in fits], schema=schema).sort("subject_id")


@derived_table("kinetic_model", "CAR-T cellular-kinetics model per patient: expansion, "
               "contraction and persistence with 95% CIs (BLQ censored)",
               options={"assay": Option(str, "CAR_QPCR", "series to fit (CAR_QPCR, CAR_ABS)"),
                        "min_quantified": Option(int, MIN_QUANTIFIED,
                                                 "quantifiable values needed to fit"),
                        "sigma": Option(float, None, "residual SD on the log10 scale (default: "
                                        "pooled estimate over the patients)")})
def kinetic_model_table(study: Study, *, assay: str = "CAR_QPCR",
                        min_quantified: int = MIN_QUANTIFIED,
                        sigma: float | None = None) -> pl.DataFrame:
    """The model fitted to every patient's `assay` series in blood (columns MODEL_COLUMNS).
    `sigma` is given on the log10 scale here (as reported in `sigma_log10`). Each series is
    cut at the patient's HSCT (later samples are the graft's course, not the CAR-T's)."""
    series, _ = before_hsct(kinetic_series(study, analytes=[assay]), hsct=hsct_days(study))
    ln_sigma = None if sigma is None else sigma * math.log(10)
    return fits_table(fit_all(series, assay=assay, min_quantified=min_quantified,
                          sigma=ln_sigma))


def model_curve(fit: KineticFit, *, days: DayWindow, points: int = 200) -> pl.DataFrame:
    """The fitted curve (subject_id, assay, day, value) over the window `days` (an open start:
    day 0, the infusion; the end must be given), with the fitted Tmax among the points; empty
    when the fit did not converge (no curve is drawn for such a fit)."""
    if days.hi is None:
        raise ValueError(f"model_curve: the window {days.text} has no last day; give one, "
                         "e.g. DayWindow(0, 28)")
    schema = {"subject_id": pl.String, "assay": pl.String, "day": pl.Float64,
              "value": pl.Float64}
    if not fit.converged:
        return pl.DataFrame(schema=schema)
    tmax = fit.estimates["tmax"][0]
    first = 0.0 if days.lo is None else float(days.lo)
    grid = np.unique(np.concatenate([np.linspace(first, float(days.hi), points), [tmax]]))
    return pl.DataFrame({"subject_id": fit.subject_id, "assay": fit.assay, "day": grid,
                         "value": predict(fit, grid)}, schema=schema)


def model_curves(fits: Iterable[KineticFit], *, days: DayWindow,
                 points: int = 200) -> pl.DataFrame:
    """`model_curve` of every converged fit, stacked."""
    frames = [model_curve(f, days=days, points=points) for f in fits]
    frames = [f for f in frames if f.height]
    if not frames:
        return model_curve(KineticFit("", "", "not converged", 0, 0), days=DayWindow(0, 1))
    return pl.concat(frames)
