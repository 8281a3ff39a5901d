"""The CAR-T cellular-kinetics model (analysis.kinetic_model): recovery of known parameters from
series simulated with them (log-normal noise, a BLQ tail), censoring of BLQ values, and a clear
"not converged" for series the model cannot describe."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from analysis.kinetic_model import (
    MODEL_COLUMNS,
    fit_all,
    fit_kinetic_model,
    model_curve,
    model_curves,
    predict,
)
from analysis.registry import get_derived
from analysis.vocab import DayWindow

TRUE = {"cmax": 5e4, "tmax": 9.0, "rho": 0.6, "alpha": math.log(2) / 6,
        "beta": math.log(2) / 90, "b": 0.06}
SIGMA = 0.25  # natural-log scale
LLOQ = 50.0
DAYS = np.array([1, 2, 4, 7, 9, 11, 14, 21, 28, 42, 60, 90, 120, 180, 270, 365, 450, 540, 630,
                 730], dtype=float)


def _level(t: np.ndarray) -> np.ndarray:
    p = TRUE
    up = p["cmax"] * np.exp(-p["rho"] * (p["tmax"] - t))
    down = p["cmax"] * ((1 - p["b"]) * np.exp(-p["alpha"] * (t - p["tmax"]))
                        + p["b"] * np.exp(-p["beta"] * (t - p["tmax"])))
    return np.where(t <= p["tmax"], up, down)


def _simulate(seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    c = _level(DAYS) * np.exp(rng.normal(0, SIGMA, len(DAYS)))
    # measured as the lab reports it: whole copies, below the LLOQ as measured
    return pl.DataFrame({"subject_id": f"S{seed}", "assay": "CAR_QPCR",
                         "day": np.r_[0, DAYS].astype(int), "value": np.r_[0.0, np.round(c)],
                         "lloq": LLOQ})


@pytest.fixture(scope="module")
def fits():
    series = pl.concat([_simulate(s) for s in range(8)])
    # the simulated tail falls below the LLOQ: the censored part of the likelihood is used
    assert series.filter((pl.col("day") > 0) & (pl.col("value") < LLOQ)).height >= 8
    return fit_all(series)


TRUTH = {"doubling_time": (math.log(2) / TRUE["rho"], 0.10),
         "half_life_contraction": (6.0, 0.20),
         "half_life_persistence": (90.0, 0.15),
         "persistent_fraction": (0.06, 0.30),
         "cmax": (5e4, 0.20)}


@pytest.mark.slow
def test_recovers_known_parameters_within_tolerance(fits):
    # Tolerance: median relative error over 8 simulated patients (sigma 0.25 on the log scale,
    # 20 samples to day 730, 2-3 BLQ values each); Tmax within 1 day.
    assert all(f.converged for f in fits), [f.status for f in fits]
    for name, (true, tol) in TRUTH.items():
        est = np.array([f.estimates[name][0] for f in fits])
        assert np.median(np.abs(est / true - 1)) < tol, (name, est)
    tmax = np.array([f.estimates["tmax"][0] for f in fits])
    assert np.median(np.abs(tmax - TRUE["tmax"])) < 1.0
    # the pooled residual SD comes back close to the simulated one
    assert fits[0].sigma == pytest.approx(SIGMA, rel=0.2)


def test_intervals_cover_the_truth_and_bracket_the_estimate(fits):
    for name, (true, _tol) in {**TRUTH, "tmax": (TRUE["tmax"], 0)}.items():
        covered = sum(f.estimates[name][1] <= true <= f.estimates[name][2] for f in fits)
        assert covered >= 5, (name, covered)  # nominal 95%: at least 5 of 8
        for f in fits:
            est, lo, hi = f.estimates[name]
            assert lo < est < hi


def test_blq_values_are_censored_not_imputed():
    base = _simulate(3)
    tail = (pl.col("day") > 0) & (pl.col("value") < LLOQ)
    a = fit_kinetic_model(base.with_columns(pl.when(tail).then(0.0).otherwise(pl.col("value"))
                                            .alias("value")), sigma=SIGMA)
    b = fit_kinetic_model(base.with_columns(pl.when(tail).then(LLOQ * 0.9)
                                            .otherwise(pl.col("value")).alias("value")),
                          sigma=SIGMA)
    assert a.converged and b.converged and a.n_blq == b.n_blq >= 2
    assert a.estimates["half_life_persistence"][0] == pytest.approx(
        b.estimates["half_life_persistence"][0], rel=1e-4)
    # dropping the censored tail changes the persistence estimate: it carries information
    c = fit_kinetic_model(base.filter(~tail), sigma=SIGMA)
    assert c.estimates["half_life_persistence"][0] != pytest.approx(
        a.estimates["half_life_persistence"][0], rel=1e-3)


def test_curve_passes_through_the_peak(fits):
    f = fits[0]
    curve = model_curve(f, days=DayWindow(0, 730))
    assert curve.height > 100 and curve.get_column("day").max() == 730
    top = curve.sort("value").tail(1)
    assert top.get_column("day").item() == pytest.approx(f.estimates["tmax"][0])
    assert top.get_column("value").item() == pytest.approx(f.estimates["cmax"][0], rel=1e-6)


def test_flat_series_reports_non_convergence_and_no_curve():
    rng = np.random.default_rng(0)
    flat = pl.DataFrame({"day": DAYS.astype(int),
                         "value": 1000 * np.exp(rng.normal(0, 0.05, len(DAYS))), "lloq": LLOQ})
    fit = fit_kinetic_model(flat, subject_id="F", sigma=SIGMA)
    assert not fit.converged
    assert fit.status.startswith("not converged: ")
    assert fit.estimates == {} and fit.row()["doubling_time"] is None
    assert model_curve(fit, days=DayWindow(0, 730)).height == 0
    assert np.isnan(predict(fit, [1.0, 10.0])).all()


def test_too_few_values_say_so():
    short = pl.DataFrame({"day": [0, 7, 14, 28], "value": [0.0, 900.0, 20000.0, 3000.0],
                          "lloq": LLOQ})
    fit = fit_kinetic_model(short, sigma=SIGMA)
    assert fit.status == ("not converged: 3 quantifiable value(s) after infusion, at least 5 "
                          "are needed for the model")
    assert model_curves([fit], days=DayWindow(0, 28)).height == 0


@pytest.mark.slow
def test_derived_table_on_the_demo(demo_study):
    table = get_derived("kinetic_model")(demo_study)
    assert tuple(table.columns) == MODEL_COLUMNS
    assert table.height == demo_study.patients.height
    ok = table.filter(pl.col("converged"))
    assert ok.height >= 2
    # responders' CAR-T peak on days 7-14 in the demo (sample_data/README.md)
    assert ok.get_column("tmax").is_between(6, 15).all()
    assert (table.filter(~pl.col("converged")).get_column("cmax").null_count()
            == table.filter(~pl.col("converged")).height)
