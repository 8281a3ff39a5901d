"""The kinetic-model overlay (views.kinetics): a curve for each converged fit, none for a fit
that did not converge, and the same table as `cli.py table kinetic_model`."""

from __future__ import annotations

from dataclasses import replace

import polars as pl
import pytest

from analysis.registry import get_derived
from views import kinetics as kv


@pytest.fixture(scope="module")
def fitted(demo_study):
    return kv.fits(demo_study, params=kv.KineticModelParams())


def test_curves_only_for_converged_fits(demo_study, fitted):
    failed = replace(fitted[0], status="not converged: expansion rate not identified by the "
                                        "data (estimate at the edge of its range)",
                     theta=None, estimates={})
    fits = [failed, *fitted[1:]]
    spec = kv.model_figure(demo_study, params=kv.KineticModelParams(), fitted=fits)
    names = [t.name for t in spec.fig.data]
    assert f"{failed.subject_id} (no fit)" in names
    assert f"{failed.subject_id} model" not in names
    ok = [f.subject_id for f in fits if f.converged]
    assert all(f"{s} model" in names for s in ok)
    assert spec.fig.layout.yaxis.type == "log"
    curves = spec.data.filter(pl.col("kind") == "model")
    assert failed.subject_id not in set(curves.get_column("subject_id"))
    table = kv.model_table(demo_study, params=kv.KineticModelParams(), fitted=fits).data
    row = table.filter(pl.col("subject_id") == failed.subject_id).row(0, named=True)
    assert row["status"].startswith("not converged") and row["doubling_time"] is None


def test_table_matches_the_cli_table(demo_study, fitted):
    table = kv.model_table(demo_study, params=kv.KineticModelParams(), fitted=fitted).data
    cli = get_derived("kinetic_model")(demo_study)
    assert table.equals(cli)


def test_kinetics_page_shows_the_model(app_page):
    at = app_page("pages/kinetics.py")
    assert not at.exception
    assert at.toggle(key="kin-model").value
    assert any("Tobit likelihood" in c.value for c in at.caption)


def test_curve_names_the_unit_once_on_the_axis(demo_study):
    from views import kinetics as vk

    fig = vk.curve(demo_study, params=vk.CurveParams()).fig
    assert "gDNA" in fig.layout.yaxis.title.text
    assert "gDNA" not in fig.layout.title.text and fig.layout.title.text


def test_curve_legend_is_titled_in_words(demo_study):
    from views import kinetics as vk

    fig = vk.curve(demo_study, params=vk.CurveParams()).fig
    assert fig.layout.legend.title.text == "Patient"


def _line_colours(fig) -> dict[str, str]:
    return {t.name: t.line.color for t in fig.data
            if getattr(t, "line", None) is not None and t.line.color and t.name}


def test_curve_coloured_by_response_group_when_the_cohort_says_so(demo_study):
    from analysis.cohort import Cohort, response_groups
    from components.theme import GROUP_COLORS, patient_colors
    from views import kinetics as vk

    groups = dict(response_groups(demo_study).select("subject_id", "response_group").iter_rows())
    by_patient = _line_colours(vk.curve(demo_study, params=vk.CurveParams()).fig)
    spec = vk.curve(demo_study, cohort=Cohort(colour_by="response_group"),
                    params=vk.CurveParams())
    by_group = _line_colours(spec.fig)
    shown = [sid for sid in by_group if sid in groups]
    assert len(shown) >= 2
    assert all(by_group[sid] == GROUP_COLORS[groups[sid]] for sid in shown)
    assert all(by_patient[sid] == patient_colors(demo_study.subject_ids)[sid] for sid in shown)
    assert len({by_group[sid] for sid in shown}) < len({by_patient[sid] for sid in shown})
    assert spec.cohort.colour_by == "response_group"   # the record keeps the choice


def test_colour_choice_travels_in_the_code(demo_study):
    from analysis.cohort import Cohort
    from views import code
    from views import kinetics as vk

    spec = vk.curve(demo_study, cohort=Cohort(colour_by="response_group"),
                    params=vk.CurveParams())
    assert "colour_by='response_group'" in code.snippet(spec, demo_study.path)
    assert "--colour-by response_group" in code.command(spec, demo_study.path)


def test_exposure_titles_are_short_and_the_test_is_their_subtitle(demo_study):
    """In the page's two columns the full test line as a title was cut off: each strip is
    titled by what it plots, the test goes below it, wrapped."""
    from components.figures.kinetics import SUBTITLE_WRAP
    from views import kinetics as kv

    for params, name in ((kv.ExposureParams(), "Cmax"),
                         (kv.ExposureParams(parameter="auc_0_28"), "AUC0-28")):
        by_group, by_grade = kv.exposure(demo_study, params=params)
        assert by_group.fig.layout.title.text == f"{name} by best response group"
        assert by_grade.fig.layout.title.text == f"{name} by CRS max grade"
        for spec in (by_group, by_grade):
            sub = spec.fig.layout.title.subtitle.text
            assert "p = " in sub
            assert all(len(line) <= SUBTITLE_WRAP for line in sub.split("<br>"))
