"""Figure factories of the comparison page: volcano, ranked table, z-scored heatmap,
feature trajectory, and the standard deck figure."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest

from analysis import stats as st
from components.figures import compare as fc


def _result(n: int = 30) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    p = np.sort(rng.uniform(1e-5, 1, n))
    p[:3] = [1e-6, 1e-5, 1e-4]
    from statsmodels.stats.multitest import multipletests

    q = multipletests(p, method="fdr_bh")[1]
    effect = rng.normal(0, 1.5, n)
    effect[:3] = [-3.0, 2.5, -2.0]
    return pl.DataFrame({"feature": [f"F{i}" for i in range(n)], "n_group_a": 8,
                         "n_group_b": 7, "effect": effect, "effect_measure": "Hedges' g",
                         "p_value": p, "q_value": q, "group_a": "Responder",
                         "group_b": "Non-responder", "median_a": 1.0, "median_b": 2.0,
                         "log2fc": effect / 2})


def _hline(fig: go.Figure) -> float:
    return next(s.y0 for s in fig.layout.shapes if s.y0 == s.y1)


def test_fdr_line_is_where_the_analysis_q_crosses_fdr():
    """p 0.001, 0.008, 0.039, 0.041, 0.5 with their BH q (analysis.stats.bh): at 5 % the q of
    0.001 and 0.008 pass (0.005, 0.02), 0.039 does not (0.05125): the line is at p 0.008. With
    nothing passing, at the first BH step fdr / m (0.1 / 2); a feature outside the family
    (q missing, e.g. one that defines the groups) neither moves the line nor counts in m."""
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.5])
    res = pl.DataFrame({"feature": [f"F{i}" for i in range(5)], "effect": [1.0] * 5,
                        "p_value": p, "q_value": st.bh(p)})
    assert _hline(fc.volcano(res, fdr=0.05)) == pytest.approx(-math.log10(0.008))
    none = pl.DataFrame({"feature": ["A", "B", "C"], "effect": [1.0, -1.0, 1.0],
                         "p_value": [0.5, 0.9, 0.0001], "q_value": [0.9, 0.9, None]})
    assert _hline(fc.volcano(none, fdr=0.1)) == pytest.approx(-math.log10(0.05))


def test_volcano_traces_line_labels_and_customdata():
    res = _result()
    f = fc.volcano(res, fdr=0.1, top=5, x_title="Hedges' g")
    assert isinstance(f, go.Figure) and len(f.data) == 3
    assert all(t.mode == "markers" for t in f.data)
    sig_a, sig_b, rest = f.data
    assert "higher in Responder" in sig_a.name and "higher in Non-responder" in sig_b.name
    assert "F1" in sig_a.customdata and "F0" in sig_b.customdata
    assert len(sig_a.x) + len(sig_b.x) + len(rest.x) == res.height
    assert sig_a.marker.color == "#0072B2" and sig_b.marker.color == "#D55E00"
    hline = [s for s in f.layout.shapes if s.y0 == s.y1]
    passing = res.filter(pl.col("q_value") <= 0.1).get_column("p_value").max()
    assert hline and hline[0].y0 == pytest.approx(-math.log10(passing))
    labels = [a.text for a in f.layout.annotations if a.showarrow]
    assert labels == ["F0", "F1", "F2", "F3", "F4"]
    assert f.layout.xaxis.title.text == "Hedges' g"


def test_volcano_skips_untested_rows():
    res = _result().with_columns(pl.when(pl.col("feature") == "F0").then(None)
                                 .otherwise(pl.col("p_value")).alias("p_value"))
    f = fc.volcano(res)
    assert sum(len(t.x) for t in f.data) == res.height - 1


def test_ranked_table_and_top_features():
    res = _result().with_columns(pl.lit(None, pl.String).alias("reason"))
    t = fc.ranked_table(res, top=4)
    assert t.columns[:4] == ["rank", "feature", "n_group_a", "n_group_b"]
    assert t.get_column("rank").to_list() == [1, 2, 3, 4] and t.height == 4
    untested = res.with_columns(pl.when(pl.col("feature") == "F0").then(None)
                                .otherwise(pl.col("p_value")).alias("p_value"))
    assert fc.top_features(untested, n=3) == ["F1", "F2", "F3"]


def test_zscore_heatmap_groups_rows_and_zscores_columns():
    vals = pl.DataFrame({
        "subject_id": ["A1", "A2", "B1", "B2"] * 2,
        "group": ["R", "R", "N", "N"] * 2,
        "feature": ["X"] * 4 + ["Y"] * 4,
        "value": [1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0],
        "day": [28] * 8, "timepoint": ["D28"] * 8})
    f = fc.zscore_heatmap(vals, group_order=["N", "R"])
    strip, heat = f.data
    assert list(heat.x) == ["X", "Y"]
    assert [y.split(" ")[0] for y in heat.y] == ["B1", "B2", "A1", "A2"]
    assert heat.y[0] == "B1 (D28)"
    z = np.array(heat.z, dtype=float)
    assert np.nanmean(z[:, 0]) == pytest.approx(0) and np.nanstd(z[:, 0], ddof=1) == \
        pytest.approx(1)
    assert (z[:, 1] == 0).all()                                  # constant feature
    assert [row[0] for row in strip.text] == ["N", "N", "R", "R"]


def test_feature_trajectory_lines_colours_and_window_tests():
    course = pl.DataFrame({"subject_id": ["A1", "A1", "B1", "B1", "B2"],
                           "group": ["Responder", "Responder", "Non-responder",
                                     "Non-responder", "Non-responder"],
                           "day": [-7, 28, -7, 28, 28], "value": [1.0, 0.5, 1.0, 2.0, 2.5]})
    tests = pl.DataFrame({"window": ["baseline", "D28"], "lo": [None, 21], "hi": [0, 35],
                          "centre": [0.0, 28.0], "n_group_a": [1, 1], "n_group_b": [1, 2],
                          "effect": [None, -1.0], "p_value": [None, 0.67]},
                         schema_overrides={"lo": pl.Int64})
    f = fc.feature_trajectory(course, tests=tests, log_y=True, title="X")
    assert len(f.data) == 3 and sum(t.showlegend for t in f.data) == 2
    colors = {t.text[0]: t.line.color for t in f.data}
    assert colors["A1"] == "#0072B2" and colors["B1"] == colors["B2"] == "#D55E00"
    notes = [a.text for a in f.layout.annotations]
    assert notes == ["<b>baseline</b> no test", "<b>D28</b> p=0.67"]
    assert len(f.layout.shapes) == 2 and f.layout.yaxis.type == "log"


def test_compare_standard_figure_on_demo(demo_study):
    from analysis.cohort import Cohort
    from views.deck import slide

    out = slide("compare-volcano").build(demo_study, Cohort())
    assert out is not None and "proteomics at D28" in out.fig.layout.title.text
    assert out.data.get_column("feature").head(4).sort().to_list() == sorted(
        ["IFNG", "CXCL9", "CXCL10", "CXCL11"])
    assert out.data.select("n_group_a", "n_group_b").row(0) == (3, 2)
