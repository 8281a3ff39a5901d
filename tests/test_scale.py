"""Large cohorts stay cheap: figure factories draw a bounded number of traces above
MANY_PATIENTS patients (and keep one trace per patient below it) and tests switch to
asymptotic p values for large samples."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from analysis import kinetics as kin
from components.figures import kinetics as fk
from components.figures.many import MANY_PATIENTS, gapped
from components.theme import patient_colors

N = 60   # patients: above MANY_PATIENTS
MAX_TRACES = 17 * 3 + 1   # colours x emphasis, plus one extra (BLQ ring)


def _series(n: int = N) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    ids = [f"P{i:03d}" for i in range(n)]
    days = [0, 7, 14, 28, 90]
    raw = pl.DataFrame({
        "subject_id": [s for s in ids for _ in days], "analyte": "CAR_QPCR",
        "day": days * n, "value": rng.lognormal(6, 2, n * len(days)), "lloq": 50.0,
        "unit": "copies/ug gDNA"})
    return kin.prepare_series(raw)


def test_gapped_puts_a_null_row_between_patients():
    df = pl.DataFrame({"subject_id": ["B", "A", "A", "B"], "day": [7, 7, 0, 0],
                       "v": [1.0, 2.0, 3.0, 4.0]})
    g = gapped(df, key="subject_id", order="day")
    assert g.get_column("subject_id").to_list() == ["A", "A", "A", "B", "B", "B"]
    assert g.get_column("day").to_list() == [0, 7, None, 0, 7, None]
    assert g.get_column("v").to_list() == [3.0, 2.0, None, 4.0, 1.0, None]


def test_kinetics_curve_many_patients_bounded_traces_same_points():
    s = _series()
    ids = sorted(set(s.get_column("subject_id")))
    colors = patient_colors(ids)
    fig = fk.kinetics_curve(s, colors=colors)
    lines = [t for t in fig.data if t.name != fk._BLQ_NAME]
    assert len(lines) == 17 and len(fig.data) <= MAX_TRACES
    assert all(not t.showlegend for t in lines)
    # every patient's points are drawn, in its own colour, and the hover names the patient
    want = {(r["subject_id"], float(r["day"]), float(r["plot_value"]))
            for r in s.iter_rows(named=True)}
    got = set()
    for t in lines:
        for label, x, y in zip(t.text, t.x, t.y, strict=True):
            if x is not None:
                sid = label.split(" · ")[0]
                assert colors[sid] == t.line.color
                got.add((sid, float(x), float(y)))
    assert got == want
    highlighted = fk.kinetics_curve(s, colors=colors, highlight=ids[:2])
    bold = [t for t in highlighted.data if t.line.width == 3.5]
    assert {lab.split(" · ")[0] for t in bold for lab in t.text if lab} == set(ids[:2])
    assert len(highlighted.data) <= MAX_TRACES


def test_few_patients_keep_one_trace_each():
    s = _series(MANY_PATIENTS)
    fig = fk.kinetics_curve(s, colors=patient_colors(s.get_column("subject_id")))
    assert len([t for t in fig.data if t.name != fk._BLQ_NAME]) == MANY_PATIENTS


def test_other_kinetics_figures_many_patients_bounded():
    s = _series()
    ids = sorted(set(s.get_column("subject_id")))
    colors = patient_colors(ids)
    two = pl.concat([s, s.with_columns(pl.lit("NK_ABS").alias("assay"))])
    panels = fk.readout_panels(two, y="plot_value", facet_order=("CAR_QPCR", "NK_ABS"),
                               colors=colors)
    assert len(panels.data) == 2 * 17
    assert {t.yaxis for t in panels.data} == {"y", "y2"}
    pairs = kin.concordance(pl.concat([s, s.with_columns(pl.lit("CAR_PCT").alias("assay"))]),
                            x="CAR_QPCR", y="CAR_PCT")
    scatter = fk.concordance_scatter(pairs, colors=colors)
    assert len(scatter.data) == 17 and sum(len(t.x) for t in scatter.data) == pairs.height
    er = pl.DataFrame({"subject_id": ids, "response_group": ["Responder", "Non-responder"]
                       * (N // 2), "cmax": np.arange(1.0, N + 1)})
    strip = fk.exposure_strip(er, colors=colors)
    assert len(strip.data) == 17
    assert sorted(c for t in strip.data for c in t.customdata) == ids
    assert sorted(y for t in strip.data for y in t.y) == list(np.arange(1.0, N + 1))


def test_large_samples_get_asymptotic_p_values():
    rng = np.random.default_rng(3)
    x = rng.normal(size=150)
    df = pl.DataFrame({"x": x, "y": x + rng.normal(size=150)})
    corr = kin.spearman(df)
    ref = stats.spearmanr(df["x"], df["y"])
    assert corr.method == "Spearman rho, asymptotic p"
    assert corr.rho == pytest.approx(ref.statistic) and corr.p_value == pytest.approx(ref.pvalue)
    small = kin.spearman(df.head(kin.SPEARMAN_PERMUTATION_MAX_N))
    assert small.method == "Spearman rho, permutation p"
    er = pl.DataFrame({"response_group": ["Responder", "Non-responder"] * 15,
                       "cmax": np.arange(30.0) + np.tile([4.0, 0.0], 15)})
    t = kin.exposure_tests(er, parameters=("cmax",)).row(0, named=True)
    assert t["test"] == "Mann-Whitney U, asymptotic p" and t["n"] == 30
    a = er.filter(pl.col("response_group") == "Responder")["cmax"].to_numpy()
    b = er.filter(pl.col("response_group") == "Non-responder")["cmax"].to_numpy()
    assert t["p_value"] == pytest.approx(stats.mannwhitneyu(a, b).pvalue)
    few = kin.exposure_tests(er.head(kin.MWU_EXACT_MAX_N), parameters=("cmax",)).row(0)
    assert "asymptotic" not in few[2]


def test_counts_and_peaks_many_patients_bounded():
    from components.figures.clinical import counts_by_patient
    from components.figures.safety import peak_vs_grade

    s = _series().rename({"assay": "analyte"})
    ids = sorted(set(s.get_column("subject_id")))
    two = pl.concat([s, s.with_columns(pl.lit("PLT").alias("analyte"))])
    fig = counts_by_patient(two, analytes=["CAR_QPCR", "PLT"], colors=patient_colors(ids),
                            highlight=ids[:1])
    assert len(fig.data) <= 2 * 17 * 2
    drawn = sorted(c for t in fig.data if t.yaxis == "y"
                   for c, x in zip(t.customdata, t.x, strict=True) if x is not None)
    assert drawn == sorted(s.get_column("subject_id").to_list())
    peaks = pl.DataFrame({"subject_id": ids * 2, "analyte": ["IL6"] * N + ["CRP"] * N,
                          "crs_max_grade": [i % 4 for i in range(2 * N)],
                          "peak_value": np.arange(1.0, 2 * N + 1)})
    pv = peak_vs_grade(peaks, colors=patient_colors(ids))
    assert len(pv.data) == 2 * 17 and sum(len(t.x) for t in pv.data) == 2 * N


def test_clone_tracking_and_overlap_of_some_patients_equal_the_full_tables(demo_study):
    from analysis import repertoire as rep

    one = demo_study.subject_ids[0]
    for fn in (rep.top_clone_tracking, rep.morisita_overlap):
        full = fn(demo_study).filter(pl.col("subject_id") == one)
        assert full.height and fn(demo_study, subjects=(one,)).equals(full)
    # the study's clonotypes are made once and shared by the metrics, tracking and overlap
    assert rep.study_clonotypes(demo_study, "TRB") is rep.study_clonotypes(demo_study, "TRB")
    assert rep.study_clonotypes(demo_study, "TRB").equals(rep.clonotypes(demo_study.tcr))


def test_clone_figures_many_patients_bounded():
    from components.figures.clones import repertoire_lines, vaf_lines

    ids = [f"P{i:03d}" for i in range(N)]
    tracks = pl.DataFrame({"subject_id": [s for s in ids for _ in range(3)],
                           "gene": ["TP53", "DNMT3A", "TP53"] * N, "day": [0, 0, 90] * N,
                           "vaf": [0.1, 0.0, 0.2] * N, "detected": [True, False, True] * N})
    fig = vaf_lines(tracks, colors=patient_colors(ids), log_y=True)
    assert len(fig.data) == 2 * 17
    drawn = [(c[0], c[1]) for t in fig.data for c, x in zip(t.customdata, t.x, strict=True)
             if x is not None]
    assert sorted(drawn) == sorted(zip(tracks["subject_id"], tracks["gene"], strict=True))
    assert min(y for t in fig.data for y in t.y if y is not None) == pytest.approx(0.001)
    rep_ = pl.DataFrame({"subject_id": [s for s in ids for _ in range(2)], "day": [0, 90] * N,
                         "clonality": np.linspace(0, 1, 2 * N),
                         "group": [g for i in range(N) for g in
                                   ["Responder" if i % 2 else "Non-responder"] * 2]})
    lines = repertoire_lines(rep_)
    assert [t.name for t in lines.data] == ["Non-responder", "Responder"]
    assert sum(x is not None for t in lines.data for x in t.x) == 2 * N


def test_feature_trajectory_many_patients_one_trace_per_group():
    from components.figures.compare import feature_trajectory

    ids = [f"P{i:03d}" for i in range(N)]
    course = pl.DataFrame({"subject_id": [s for s in ids for _ in range(3)],
                           "day": [0, 28, 90] * N, "value": np.arange(3.0 * N),
                           "group": [g for i in range(N) for g in
                                     ["Responder" if i < 20 else "Non-responder"] * 3]})
    fig = feature_trajectory(course)
    assert [t.name for t in fig.data] == ["Responder", "Non-responder"]
    points = sorted((s, y) for t in fig.data for s, y in zip(t.text, t.y, strict=True)
                    if y is not None)
    assert points == sorted(zip(course["subject_id"], course["value"], strict=True))
    assert len(feature_trajectory(course.filter(pl.col("subject_id") < "P040")).data) == 40
