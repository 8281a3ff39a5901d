"""Values after an HSCT: flagged, drawn apart (or stopped), marked on the time axis and kept
out of group summaries."""

from __future__ import annotations

import polars as pl
import pytest

from analysis import post_hsct
from analysis.kinetics import group_curve
from analysis.rules import DEFAULT_RULES
from components.figures.clinical import POST_HSCT_NAME, counts_by_group, counts_by_patient
from components.figures.kinetics import kinetics_curve

HSCT = pl.DataFrame({"subject_id": ["B"], "hsct_day": [100]})
SERIES = pl.DataFrame({
    "subject_id": ["A", "A", "A", "B", "B", "B", "B"],
    "assay": ["Q"] * 7, "day": [14, 90, 180, 14, 90, 120, 180],
    "plot_value": [100.0, 50.0, 20.0, 80.0, 40.0, 900.0, 1000.0],
    "value": [100.0, 50.0, 20.0, 80.0, 40.0, 900.0, 1000.0], "blq": [False] * 7,
    "lloq": [10.0] * 7, "response_group": ["Responder"] * 3 + ["Non-responder"] * 4})


def test_flag_display_and_summary():
    flagged = post_hsct.for_display(SERIES, hsct=HSCT, rules=DEFAULT_RULES)
    assert flagged.filter(pl.col("post_hsct"))["day"].to_list() == [120, 180]
    stopped = post_hsct.for_display(SERIES, hsct=HSCT,
                                    rules=DEFAULT_RULES.with_(post_hsct_display="stop"))
    assert stopped.height == 5 and not stopped["post_hsct"].any()
    with pytest.raises(ValueError, match="post_hsct_display"):
        post_hsct.for_display(SERIES, hsct=HSCT, rules=DEFAULT_RULES.with_(
            post_hsct_display="hide"))
    # the non-responder curve must not rise after day 100 on the graft's values
    curve = group_curve(post_hsct.for_summary(flagged))
    assert curve.filter(pl.col("response_group") == "Non-responder")["day"].to_list() == [14, 90]
    assert post_hsct.hsct_marks(HSCT) == [(100.0, 100.0, "HSCT B")]
    assert post_hsct.hsct_marks(HSCT, subjects=["A"]) == []


def test_hsct_on_the_demo(demo_study):
    h = post_hsct.hsct_days(demo_study)
    assert h.rows() == [("SAA-004", 121)]


def test_kinetics_curve_draws_post_hsct_apart_and_marks_the_day():
    fig = kinetics_curve(post_hsct.for_display(SERIES, hsct=HSCT, rules=DEFAULT_RULES))
    post = [t for t in fig.data if t.name == POST_HSCT_NAME]
    assert len(post) == 1 and post[0].line.dash == "dash" and post[0].opacity < 1
    assert list(post[0].x) == [90, 120, 180]          # joins on at the last CAR-T value
    b = next(t for t in fig.data if t.name == "B")
    assert list(b.x) == [14, 90]
    assert any(s.x0 == 100 for s in fig.layout.shapes)
    assert any(a.text == "HSCT B" for a in fig.layout.annotations)


def test_counts_figures_show_post_hsct_apart_and_n_per_time_point():
    counts = SERIES.rename({"assay": "analyte"}).with_columns(pl.lit("ANC").alias("analyte"))
    fig = counts_by_patient(post_hsct.for_display(counts, hsct=HSCT, rules=DEFAULT_RULES),
                            analytes=["ANC"])
    post = [t for t in fig.data if t.name == POST_HSCT_NAME]
    assert len(post) == 1 and post[0].line.dash == "dash"
    summary = pl.DataFrame({"analyte": ["ANC"] * 2, "response_group": ["Responder"] * 2,
                            "day": [0, 7], "median": [0.5, 1.0], "q1": [0.4, 0.8],
                            "q3": [0.6, 1.2], "n": [5, 2]})
    g = counts_by_group(summary, analytes=["ANC"])
    line = next(t for t in g.data if t.name == "Responder")
    assert list(line.text) == ["5", "2"] and "text" in line.mode


def test_group_kinetics_curve_prints_n_per_day():
    curve = group_curve(SERIES)
    fig = kinetics_curve(curve, y="geo_mean", color="response_group", blq=None,
                         hover="geo_mean", n="n")
    r = next(t for t in fig.data if t.name == "Responder")
    assert list(r.texttemplate) == ["1", "1", "1"] and "(n = 1)" in r.text[0]
