"""CAR-T kinetics (analysis.kinetics) on hand-built series with answers worked out by hand, and
the demo's kinetics table against an independent trapezoid computation on the raw rows."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from analysis import kinetics as kin

LLOQ = 10.0


def series(*points: tuple[int, float], subject: str = "P1", assay: str = "CAR_QPCR",
           lloq: float | None = LLOQ) -> pl.DataFrame:
    return pl.DataFrame({"subject_id": [subject] * len(points), "analyte": [assay] * len(points),
                         "day": [d for d, _ in points], "value": [float(v) for _, v in points],
                         "lloq": [lloq] * len(points), "unit": ["copies/ug gDNA"] * len(points)},
                        schema={"subject_id": pl.String, "analyte": pl.String, "day": pl.Int64,
                                "value": pl.Float64, "lloq": pl.Float64, "unit": pl.String})


def one(frame: pl.DataFrame, **kw) -> dict:
    out = kin.kinetic_parameters(frame, **kw)
    assert out.height == 1
    return out.row(0, named=True)


def log_down(c1: float, c2: float, dt: float) -> float:
    return (c1 - c2) / math.log(c1 / c2) * dt


def test_columns_start_with_the_contract():
    out = kin.kinetic_parameters(series((0, 0), (7, 1000)))
    assert tuple(out.columns[:7]) == kin.KINETICS_COLUMNS


def test_auc_linear_up_log_down_by_hand():
    r = one(series((0, 0), (7, 1000), (14, 500), (28, 100)))
    by_hand = (0 + 1000) / 2 * 7 + log_down(1000, 500, 7) + log_down(500, 100, 14)
    assert r["auc_0_28"] == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(3500 + 5049.4326 + 3479.4756, rel=1e-8)
    assert (r["cmax"], r["tmax"], r["tlast"]) == (1000.0, 7, 28)
    # baseline BLQ (0 < LLOQ 10): fold expansion is not defined, and the note says so
    assert r["baseline"] == 0.0 and r["fold_expansion"] is None
    assert r["baseline_note"] == "day 0 below LLOQ (10.0)"
    assert r["fold_note"] == "not defined: baseline (day 0) below LLOQ; Cmax is 100.0x the LLOQ"
    assert r["reason"] == "" and r["auc_note"] == ""


def test_rising_again_after_a_fall_is_linear():
    r = one(series((0, 0), (7, 100), (14, 50), (21, 200)), auc_end=21)
    assert r["auc_0_21"] == pytest.approx(350 + log_down(100, 50, 7) + (50 + 200) / 2 * 7)


def test_blq_by_position_default_policy():
    s = series((0, 0), (7, 1000), (14, 5), (21, 400), (28, 3))
    r = one(s)
    # leading BLQ -> 0, middle BLQ (day 14) dropped, trailing BLQ (day 28) -> 0
    expect = 3500 + log_down(1000, 400, 14) + (400 + 0) / 2 * 7
    assert r["auc_0_28"] == pytest.approx(expect)
    assert r["tlast"] == 21 and r["clast"] == 400 and r["n_blq"] == 3


def test_blq_policies_are_parameters():
    s = series((0, 0), (7, 1000), (14, 5), (21, 400), (28, 3))
    r = one(s, blq_middle="zero")
    assert r["auc_0_28"] == pytest.approx(3500 + 3500 + 1400 + 1400)
    r = one(s, blq_middle="half_lloq")
    assert r["auc_0_28"] == pytest.approx(3500 + log_down(1000, 5, 7) + (5 + 400) / 2 * 7 + 1400)
    r = one(s, blq_trailing="drop")
    assert r["auc_0_28"] == pytest.approx(3500 + log_down(1000, 400, 14))
    assert r["auc_note"] == "last sample day 21: AUC to that day"
    # dropping the leading BLQ leaves no day-0 value: no AUC (it would start at day 7)
    r = one(s, blq_leading="drop")
    assert r["auc_0_28"] is None and r["auc_note"].startswith("no day-0 value: AUC not computed")
    with pytest.raises(ValueError, match="BLQ policy"):
        kin.kinetic_parameters(s, blq_middle="ignore")


def test_window_end_between_samples_is_interpolated():
    r = one(series((0, 0), (7, 1000), (21, 400), (60, 100)))
    c28 = 400 * math.exp(math.log(100 / 400) * 7 / 39)
    expect = 3500 + log_down(1000, 400, 14) + log_down(400, c28, 7)
    assert r["auc_0_28"] == pytest.approx(expect)
    assert r["auc_stop"] == 28.0 and r["tlast"] == 60


def test_auc_window_end_is_an_option():
    s = series((0, 0), (7, 1000), (14, 500), (28, 100))
    out = kin.kinetic_parameters(s, auc_end=14)
    assert "auc_0_14" in out.columns and "auc_0_28" not in out.columns
    assert out.item(0, "auc_0_14") == pytest.approx(3500 + log_down(1000, 500, 7))


def test_single_sample():
    r = one(series((7, 500)))
    assert (r["cmax"], r["tmax"], r["tlast"]) == (500.0, 7, 7)
    assert r["auc_0_28"] is None and r["auc_note"].startswith("no day-0 value")
    imp = one(series((7, 500)), auc_impute_day0=True)      # 0 on day 0, then 500 on day 7
    assert imp["auc_0_28"] == pytest.approx(1750.0)
    zero = one(series((0, 0), (7, 500), lloq=10.0), blq_leading="zero")
    assert zero["auc_0_28"] == pytest.approx(1750.0)
    assert zero["auc_note"].startswith("last sample")
    day0 = one(series((0, 500)))
    assert day0["auc_0_28"] is None and day0["auc_note"].startswith("fewer than 2")
    assert r["fold_expansion"] is None and r["baseline_note"] == "no sample on/before day 0"
    assert r["detect_d28"] == "not sampled"


def test_all_blq_cmax_undefined_with_reason():
    r = one(series((0, 0), (7, 4), (14, 9)))
    assert r["cmax"] is None and r["tmax"] is None and r["tlast"] is None
    assert r["fold_expansion"] is None
    assert r["reason"] == "all 3 samples on or after day 0 below LLOQ"
    assert r["auc_0_28"] == 0.0      # every value is leading BLQ -> 0


def test_only_pre_infusion_samples():
    r = one(series((-5, 100), (-1, 50)))
    assert r["cmax"] is None and r["reason"] == "no samples on or after day 0"
    # Tlast is after infusion only: a pre-infusion value is never the last quantifiable one
    assert r["baseline"] == 50.0 and r["tlast"] is None


def test_landmarks_with_tolerance():
    s = series((0, 0), (7, 1000), (28, 200), (85, 4), (180, 20))
    r = one(s)
    assert (r["detect_d28"], r["detect_m3"], r["detect_m6"], r["detect_m12"]) == \
        ("yes", "no", "yes", "not sampled")
    r = one(s, landmark_tolerance=3)
    assert r["detect_m3"] == "not sampled"


def test_replicates_are_averaged_and_assays_kept_apart():
    s = pl.concat([series((0, 0), (7, 800), (7, 1200)),
                   series((0, 0), (7, 30), lloq=0.1, assay="CAR_PCT")])
    out = kin.kinetic_parameters(s)
    assert out.get_column("assay").to_list() == ["CAR_PCT", "CAR_QPCR"]
    assert out.filter(pl.col("assay") == "CAR_QPCR").item(0, "cmax") == 1000.0


def test_no_lloq_zero_is_not_detected():
    r = one(series((0, 0), (7, 50), (14, 0), lloq=None))
    assert r["n_blq"] == 2 and r["tlast"] == 7
    assert r["baseline"] == 0.0 and r["fold_expansion"] is None
    assert r["fold_note"] == "not defined: baseline (day 0) not detected"


def test_geometric_summary_and_cv():
    params = pl.DataFrame({"subject_id": ["A", "B", "C", "D"], "assay": ["CAR_QPCR"] * 4,
                           "cmax": [1.0, 10.0, 100.0, 5.0], "auc_0_28": [1.0, 1.0, 1.0, None]})
    groups = pl.DataFrame({"subject_id": ["A", "B", "C", "D"],
                           "response_group": ["Responder"] * 3 + ["Non-responder"]})
    out = kin.group_summary(params, groups=groups)
    r = out.filter((pl.col("response_group") == "Responder")
                   & (pl.col("parameter") == "cmax")).row(0, named=True)
    assert r["n"] == 3 and r["geo_mean"] == pytest.approx(10.0)
    assert r["geo_cv_pct"] == pytest.approx(math.sqrt(math.exp(math.log(10) ** 2) - 1) * 100)
    nr = out.filter((pl.col("response_group") == "Non-responder")
                    & (pl.col("parameter") == "cmax")).row(0, named=True)
    assert nr["n"] == 1 and nr["geo_cv_pct"] is None
    nr_auc = out.filter((pl.col("response_group") == "Non-responder")
                        & (pl.col("parameter") == "auc_0_28")).row(0, named=True)
    assert nr_auc["n"] == 0


def test_group_curve_geometric_mean_with_blq_at_half_lloq():
    s = pl.concat([series((7, 1000), subject="A"), series((7, 4), subject="B")])
    s = kin.with_groups(kin.prepare_series(s),
                        groups=pl.DataFrame({"subject_id": ["A", "B"],
                                             "best_response": ["CR", "PR"],
                                             "response_group": ["Responder", "Responder"]}))
    out = kin.group_curve(s)
    assert out.item(0, "geo_mean") == pytest.approx(math.sqrt(1000 * 5))
    assert out.item(0, "n") == 2 and out.item(0, "n_blq") == 1


def test_concordance_pairs_same_patient_and_day():
    s = pl.concat([series((0, 0), (7, 1000), (14, 500), (21, 50)),
                   series((7, 20), (14, 10), (28, 1), lloq=0.1, assay="CAR_PCT")])
    prep = kin.prepare_series(s)
    pairs = kin.concordance(prep, x="CAR_QPCR", y="CAR_PCT")
    assert pairs.get_column("day").to_list() == [7, 14]
    corr = kin.spearman(pairs)
    assert corr.rho is None and corr.n == 2      # too few pairs: said, not guessed


def test_spearman_exact_permutation():
    df = pl.DataFrame({"x": [1.0, 2, 3, 4, 5], "y": [2.0, 1, 4, 3, 5]})
    corr = kin.spearman(df)
    assert corr.rho == pytest.approx(0.8) and corr.n == 5
    # exact: 16 of the 120 orderings have |rho| >= 0.8
    assert corr.p_value == pytest.approx(16 / 120)


def test_exposure_tests_mann_whitney_exact_and_spearman():
    er = pl.DataFrame({"subject_id": list("ABCDE"), "cmax": [50.0, 40, 30, 2, 1],
                       "response_group": ["Responder"] * 3 + ["Non-responder"] * 2,
                       "crs_max_grade": [3, 2, 2, 1, 0]})
    out = kin.exposure_tests(er, parameters=("cmax",))
    mw = out.filter(pl.col("versus") == "response_group").row(0, named=True)
    assert mw["test"] == "Mann-Whitney U, exact p"
    assert mw["statistic"] == 6.0 and mw["p_value"] == pytest.approx(0.2) and mw["n"] == 5
    sp = out.filter(pl.col("versus") == "crs_max_grade").row(0, named=True)
    assert sp["n"] == 5 and sp["statistic"] == pytest.approx(0.9746794, rel=1e-6)


def test_exposure_response_joins_groups_and_crs():
    params = pl.DataFrame({"subject_id": ["A", "B"], "assay": ["CAR_QPCR", "CAR_PCT"],
                           "cmax": [1.0, 2.0]})
    groups = pl.DataFrame({"subject_id": ["A", "B"], "best_response": ["CR", "NR"],
                           "response_group": ["Responder", "Non-responder"]})
    crs = pl.DataFrame({"subject_id": ["A"], "crs_max_grade": [2]})
    out = kin.exposure_response(params, groups=groups, crs=crs, assay="CAR_QPCR")
    assert out.select("subject_id", "best_response", "crs_max_grade").rows() == [("A", "CR", 2)]


# ---- demo study -------------------------------------------------------------------------------
def _independent_auc(days: list[int], values: list[float], lloq: float, end: int) -> float:
    """Linear-up/log-down AUC with the default BLQ rules, written out with plain loops."""
    quant = [v >= lloq and v > 0 for v in values]
    if not any(quant):
        return 0.0
    first = days[quant.index(True)]
    last = max(d for d, q in zip(days, quant, strict=True) if q)
    pts = []
    for d, v, q in zip(days, values, quant, strict=True):
        if d < 0:
            continue
        if q:
            pts.append((d, v))
        elif d < first or d > last:
            pts.append((d, 0.0))
    inside = [p for p in pts if p[0] <= end]
    later = [p for p in pts if p[0] > end]
    if inside and later and inside[-1][0] < end:
        (t1, c1), (t2, c2) = inside[-1], later[0]
        f = (end - t1) / (t2 - t1)
        c = math.exp(math.log(c1) + f * math.log(c2 / c1)) if 0 < c2 < c1 else c1 + f * (c2 - c1)
        inside.append((end, c))
    total = 0.0
    for (t1, c1), (t2, c2) in zip(inside, inside[1:], strict=False):
        if 0 < c2 < c1:
            total += (c1 - c2) / math.log(c1 / c2) * (t2 - t1)
        else:
            total += (c1 + c2) / 2 * (t2 - t1)
    return total


def test_demo_kinetics_table_matches_independent_trapezoids(demo_study):
    table = kin.kinetics_table(demo_study)
    assert tuple(table.columns[:7]) == kin.KINETICS_COLUMNS
    raw = demo_study.measurements.filter(pl.col("analyte").is_in(list(kin.ASSAYS)))
    assert set(table.get_column("assay").to_list()) == set(kin.ASSAYS)
    checked = 0
    for (sid, assay), rows in raw.sort("day").group_by(["subject_id", "analyte"]):
        days = rows.get_column("day").to_list()
        vals = rows.get_column("value").to_numpy()
        lloq = float(rows.get_column("lloq").max())
        row = table.filter((pl.col("subject_id") == sid) & (pl.col("assay") == assay))
        expect = _independent_auc(days, list(vals), lloq, 28)
        assert row.item(0, "auc_0_28") == pytest.approx(expect, rel=1e-9), (sid, assay)
        post = (np.array(days) >= 0) & (vals >= lloq)
        assert row.item(0, "cmax") == vals[post].max()
        checked += 1
    assert checked == table.height == 15


def test_demo_peaks_between_day_7_and_14(demo_study):
    qpcr = kin.kinetics_table(demo_study).filter(pl.col("assay") == "CAR_QPCR")
    assert qpcr.get_column("tmax").is_between(7, 14).all()
    series_ = kin.kinetic_series(demo_study)
    assert series_.get_column("blq").any()        # the demo has values below the LLOQ


def test_cli_table_kinetics(demo_dir, capsysbinary):
    import cli

    assert cli.main(["table", "--study", str(demo_dir), "kinetics", "--auc-end", "21"]) == 0
    header = capsysbinary.readouterr().out.decode().splitlines()[0]
    assert header.startswith("subject_id,assay,cmax,tmax,auc_0_21,tlast,fold_expansion")


# ---- edges of the NCA rules (each fails on the rules these replaced) ------------------------
def test_tlast_is_never_a_pre_infusion_day():
    """Quantifiable at day -3 (200, residual product) and day 7 (1000); BLQ on days 14 and
    21 (value 4 < LLOQ 10). Last quantifiable day after infusion = 7 (before: -3 was allowed,
    and with only pre-infusion values Tlast was -3)."""
    r = one(series((-3, 200), (0, 0), (7, 1000), (14, 4), (21, 4)))
    assert (r["tlast"], r["clast"]) == (7, 1000.0)
    r = one(series((-3, 200), (0, 0), (7, 4)))
    assert r["tlast"] is None and r["clast"] is None


def test_fold_expansion_not_defined_when_baseline_is_blq():
    """Baseline day -1 = 3 copies with LLOQ 10 (BLQ), Cmax 1,000 on day 7. The old rule
    divided by LLOQ/2 = 5 and gave 200x, a number set by the assay. Now: null, with the
    reason and Cmax / LLOQ = 100x as the lower bound a reader can use. A quantifiable
    baseline of 20 gives 1000 / 20 = 50x."""
    r = one(series((-1, 3), (7, 1000), (14, 200)))
    assert r["fold_expansion"] is None
    assert r["fold_note"] == "not defined: baseline (day -1) below LLOQ; Cmax is 100.0x the LLOQ"
    r = one(series((-1, 20), (7, 1000), (14, 200)))
    assert r["fold_expansion"] == pytest.approx(50.0) and r["fold_note"] == ""


def test_no_day0_sample_auc_not_computed_unless_imputed():
    """Samples on days 3 (600), 7 (1000) and 28 (100), none on day 0. The old rule integrated
    from day 3 (dropping days 0-3). Now AUC is null with the reason; with auc_impute_day0
    (PKNCA start_conc0) the level is 0 on day 0:
    0->3 linear (0 + 600) / 2 * 3 = 900; 3->7 linear (600 + 1000) / 2 * 4 = 3200;
    7->28 log-down (1000 - 100) / ln(10) * 21 = 8208.15..."""
    s = series((3, 600), (7, 1000), (28, 100))
    r = one(s)
    assert r["auc_0_28"] is None and r["auc_note"].startswith("no day-0 value: AUC not computed")
    r = one(s, auc_impute_day0=True)
    assert r["auc_0_28"] == pytest.approx(900 + 3200 + log_down(1000, 100, 21))
    assert r["auc_note"] == "no day-0 value: level 0 on day 0 imputed (auc_impute_day0)"


def test_blq_is_decided_per_replicate_before_averaging():
    """Day 7 triplicate 5, 5, 25 with LLOQ 10: the mean 11.67 is >= LLOQ, but two of three
    replicates are BLQ, so the day is BLQ (share 1/3 < 0.5). Day 14 duplicate 4 and 30: one of
    two quantifiable (share 0.5): quantifiable at the mean of the quantifiable replicate, 30
    (not (4 + 30) / 2 = 17)."""
    s = series((0, 0), (7, 5), (7, 5), (7, 25), (14, 4), (14, 30))
    prep = kin.prepare_series(s)
    d7 = prep.filter(pl.col("day") == 7).row(0, named=True)
    d14 = prep.filter(pl.col("day") == 14).row(0, named=True)
    assert d7["blq"] is True and (d7["n_replicates"], d7["n_replicates_blq"]) == (3, 2)
    assert d14["blq"] is False and d14["value"] == 30.0
    r = one(s)
    assert (r["cmax"], r["tmax"]) == (30.0, 14)
    strict = kin.prepare_series(s, replicate_share=1.0)
    assert strict.filter(pl.col("day") == 14).item(0, "blq") is True


def test_group_summary_keeps_non_expanders_and_says_how():
    """Responders A (Cmax 100), B (1000) and C (non-expander: all post-infusion samples BLQ,
    LLOQ 10). Exclude: geometric mean sqrt(100 * 1000) = 316.2 of 2 of 3 patients, the note
    names the non-expander. half_lloq: C enters at 5, (100 * 1000 * 5) ^ (1/3) = 79.37."""
    params = kin.kinetic_parameters(pl.concat([
        series((0, 0), (7, 100), subject="A"), series((0, 0), (7, 1000), subject="B"),
        series((0, 0), (7, 4), (14, 2), subject="C")]))
    groups = pl.DataFrame({"subject_id": ["A", "B", "C"], "response_group": ["Responder"] * 3})
    out = kin.group_summary(params, groups=groups, parameters=("cmax",))
    r = out.row(0, named=True)
    assert (r["n_patients"], r["n_nonexpanders"], r["n"]) == (3, 1, 2)
    assert r["geo_mean"] == pytest.approx(math.sqrt(100 * 1000))
    assert r["note"] == ("geometric mean of 2 of 3 patients; 1 non-expander(s) (no quantifiable "
                         "value after infusion) not in it")
    half = kin.group_summary(params, groups=groups, parameters=("cmax",),
                             nonexpanders="half_lloq").row(0, named=True)
    assert half["n"] == 3 and half["geo_mean"] == pytest.approx((100 * 1000 * 5) ** (1 / 3))
    assert "1 non-expander(s) in it at LLOQ/2" in half["note"]


def test_repeated_correlation_leaves_blq_out_and_counts_patients():
    rows = []
    for i, sid in enumerate(["P1", "P2", "P3"]):
        for d in range(5):
            rows.append({"subject_id": sid, "day": d, "x": 10.0 ** (i + d * 0.2),
                         "y": 10.0 ** (i + d * 0.1 + (0.05 if d % 2 else 0)),
                         "x_blq": d == 0 and sid == "P1", "y_blq": False})
    corr = kin.repeated_correlation(pl.DataFrame(rows))
    assert corr.n_blq_excluded == 1
    assert corr.rm.n == 14 and corr.rm.n_subjects == 3 and corr.rm.dof == 14 - 3 - 1
    assert corr.rm.r > 0.9
    assert len(corr.per_patient) == 3
    text = corr.describe()
    assert "rmcorr" in text and "14 samples of 3 patients" in text and "left out" in text
    assert "Spearman" not in corr.short()


# ---- HSCT cuts the CAR-T series ------------------------------------------------------------
def test_samples_after_hsct_do_not_enter_nca():
    """HSCT on day 60: the day-90 value (the graft's lymphocytes, 5000 > the CAR-T peak) and
    the day-180 value are left out, so Cmax stays the day-7 peak, Tlast is day 28 (the last
    quantifiable before the HSCT) and M3/M6 are not sampled; the note says what was cut."""
    s = series((0, 0), (7, 1000), (14, 500), (28, 100), (60, 5), (90, 5000), (180, 300))
    hsct = pl.DataFrame({"subject_id": ["P1"], "hsct_day": [60]})
    r = one(s, hsct=hsct)
    assert (r["cmax"], r["tmax"], r["tlast"]) == (1000.0, 7, 28)
    assert (r["detect_m3"], r["detect_m6"]) == ("not sampled", "not sampled")
    assert r["n_samples"] == 4
    assert r["hsct_note"] == "cut at HSCT on day 60: 3 later sample(s) not used"
    uncut = one(s)
    assert (uncut["cmax"], uncut["tlast"], uncut["hsct_note"]) == (5000.0, 180, "")
    # an HSCT after the last sample: nothing cut, and the note says so
    late = one(s, hsct=hsct.with_columns(hsct_day=pl.lit(400)))
    assert late["cmax"] == 5000.0 and late["hsct_note"] == "HSCT on day 400: no later sample"


def test_kinetics_table_cuts_each_series_at_the_study_hsct(write_study):
    """Through a study: patients.hsct_day cuts the NCA (table) and the kinetic model's input."""
    from analysis.kinetic_model import kinetic_model_table
    from data_loaders import load_study

    rows = [(0, 0), (4, 200), (7, 3000), (10, 2000), (14, 900), (21, 500), (28, 300),
            (60, 100), (90, 40000), (120, 20000)]
    meas = "subject_id,day,analyte,value,unit,panel,lloq\n" + "".join(
        f"P1,{d},CAR_QPCR,{v},copies/ug gDNA,car_t,50\n" for d, v in rows)
    study = load_study(write_study(
        patients="subject_id,sex,infusion_date,hsct_day\nP1,M,2025-01-10,75\n",
        measurements=meas))
    r = kin.kinetics_table(study).row(0, named=True)
    assert (r["cmax"], r["tmax"], r["tlast"]) == (3000.0, 7, 60)
    assert r["hsct_note"] == "cut at HSCT on day 75: 2 later sample(s) not used"
    model = kinetic_model_table(study)
    assert model.height == 1
    m = model.row(0, named=True)
    assert m["n_fitted"] == 7      # days 4..60 (not day 0, nor 90 and 120 after the HSCT)
