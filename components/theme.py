"""Colours and the plotly template: one colour per patient and per response group, everywhere.

Palettes are colour-blind safe: Okabe & Ito (2008) for the first eight patients, then Paul Tol's
"muted" scheme; response groups and categories use fixed Okabe-Ito colours. Patient colours are
assigned over the study's full, sorted patient list, so a patient keeps its colour whatever the
cohort filter shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from analysis.vocab import COLOUR_BY, CR, NE, NON_RESPONDER, NOT_EVALUABLE, NR, PR, RESPONDER

__all__ = ["OKABE_ITO", "TOL_MUTED", "GROUP_COLORS", "RESPONSE_COLORS", "GRADE_COLORS",
           "patient_colors", "TEMPLATE", "FONT", "label_decades", "PLT_RUG_COLOR",
           "PATIENT_PALETTE", "column_label", "display_unit", "COLOUR_BY",
           "group_patient_colors", "display_frame",
           "display_units"]

OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#000000"]
TOL_MUTED = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
             "#882255", "#AA4499"]
# Patients: no yellow (unreadable on white, and the platelet transfusion rug is orange-yellow),
# no orange (#E69F00 is the PLT rug), and the two blues far apart so that five patients (the
# usual cohort) get five hues a colour-blind reader tells apart: blue, vermilion, green,
# reddish purple, wine; then sky blue, olive and Tol's muted colours, black last.
_PATIENT_PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#882255", "#56B4E9",
                    "#999933", "#332288", "#44AA99", "#AA4499", "#117733", "#88CCEE",
                    "#DDCC77", "#CC6677", "#661100", "#6699CC", "#000000"]
PLT_RUG_COLOR = "#E69F00"

GROUP_COLORS = {RESPONDER: "#0072B2", NON_RESPONDER: "#D55E00", NOT_EVALUABLE: "#999999"}
RESPONSE_COLORS = {CR: "#009E73", PR: "#56B4E9", NR: "#D55E00", NE: "#BBBBBB",
                   "not assessed": "#EEEEEE"}
# ASTCT / CTCAE grades 1-5: light to dark (sequential, colour-blind safe: Tol YlOrBr)
GRADE_COLORS = {0: "#FFFFE5", 1: "#FEE391", 2: "#FB9A29", 3: "#CC4C02", 4: "#662506",
                5: "#000000"}
FONT = "Inter, Helvetica Neue, Arial, sans-serif"


def label_decades(fig: go.Figure) -> go.Figure:
    """Every log axis of `fig` labelled at decades only (1, 10, 100 as powers of ten), with
    unlabelled minor ticks at 2-9: plotly's default labels "2" and "5" between decades read as
    values, and a short range can end with a lone "10k". An axis whose data lie within one
    decade (no power of ten inside, e.g. TNF-alpha 2-9 pg/mL) would show no label at all, so it
    is labelled at 1, 2, 3, 5 and 7 times its power of ten instead. Returns the same figure."""
    import math

    def span(letter: str, name: str) -> tuple[float, float] | None:
        import numpy as np

        ref = letter + name.removeprefix(f"{letter}axis")      # "yaxis3" -> "y3"
        lo, hi = math.inf, -math.inf
        for t in fig.data:
            if (getattr(t, f"{letter}axis", None) or letter) != ref:
                continue
            raw = getattr(t, letter, None)
            if raw is None:
                continue
            try:
                v = np.asarray(raw, dtype=float)
            except (TypeError, ValueError):
                continue                                        # categories, text
            v = v[np.isfinite(v) & (v > 0)]
            if v.size:
                lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
        return (lo, hi) if hi > 0 else None

    def fix(axis: go.layout.XAxis | go.layout.YAxis, letter: str) -> None:
        if axis.type != "log":
            return
        lo_hi = span(letter, axis.plotly_name)
        minor = {"ticks": "outside", "ticklen": 3, "dtick": "D1", "showgrid": False}
        if lo_hi is not None and math.floor(math.log10(lo_hi[1])) == \
                math.floor(math.log10(lo_hi[0])) and axis.range is None:
            decade = 10.0 ** math.floor(math.log10(lo_hi[0]))
            ticks = [m * decade for m in (1, 2, 3, 5, 7, 10)]
            axis.update(tickmode="array", tickvals=ticks,
                        ticktext=[f"{v:g}" for v in ticks], minor=minor)
            return
        axis.update(dtick=1, exponentformat="power", showexponent="all", minor=minor)
    fig.for_each_xaxis(lambda a: fix(a, "x"))
    fig.for_each_yaxis(lambda a: fix(a, "y"))
    return fig


PATIENT_PALETTE = tuple(_PATIENT_PALETTE)


def patient_colors(subject_ids: Iterable[str]) -> dict[str, str]:
    """subject_id -> colour, stable for the study's full patient list (sorted)."""
    ids = sorted(set(subject_ids))
    return {sid: _PATIENT_PALETTE[i % len(_PATIENT_PALETTE)] for i, sid in enumerate(ids)}



def group_patient_colors(groups: Any, *, group: str = "response_group") -> dict[str, str]:
    """subject_id -> the colour of the patient's response group (GROUP_COLORS; grey for a
    group without one): per-patient figures coloured by response group, one line per patient
    still (a frame with subject_id and `group`, e.g. analysis.cohort.response_groups)."""
    return {sid: GROUP_COLORS.get(g, "#999999")
            for sid, g in groups.select("subject_id", group).iter_rows()}


TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font={"family": FONT, "size": 13, "color": "#222222"},
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=OKABE_ITO,
        # automargin: long patient ids and category ticks get their room instead of being cut
        xaxis={"showgrid": True, "gridcolor": "#EBEBEB", "zeroline": False, "linecolor": "#444",
               "ticks": "outside", "showline": True, "automargin": True},
        yaxis={"showgrid": True, "gridcolor": "#EBEBEB", "zeroline": False, "linecolor": "#444",
               "ticks": "outside", "showline": True, "automargin": True},
        legend={"bgcolor": "rgba(255,255,255,0.8)"},
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        hoverlabel={"font": {"family": FONT}},
    )
)
pio.templates["cart"] = TEMPLATE


# ---- table headers and units on screen (CSV headers and file names stay ASCII) -------------
_LABELS = {
    "subject_id": "Patient", "response_group": "Response group", "best_response": "Best response",
    "cmax": "Cmax", "tmax": "Tmax (day)", "tlast": "Tlast (day)", "clast": "Clast",
    "p_value": "p", "q_value": "q (BH FDR)", "ci_low": "95% CI low", "ci_high": "95% CI high",
    "geo_mean": "Geometric mean", "geo_cv_pct": "Geometric CV (%)", "n": "n",
    "orr": "ORR", "hedges_g": "Hedges' g", "cliffs_delta": "Cliff's delta",
    "log2fc": "log2 fold change", "crs_max_grade": "CRS max grade", "day": "Day",
    "auc": "AUC", "fold_expansion": "Fold expansion", "n_at_risk": "n at risk",
    # response categories keep their capitals (CR, not "Cr")
    "cr": "CR", "pr": "PR", "nr": "NR", "ne": "NE",
    # recovery and haematotoxicity (Blood counts)
    "anc_recovery_day": "ANC recovery (day)", "plt_recovery_day": "PLT recovery (day)",
    "transfusion_independence_day": "Transfusion independence (day)",
    "last_rbc_transfusion_day": "Last RBC transfusion (day)",
    "last_plt_transfusion_day": "Last PLT transfusion (day)",
    "baseline_anc": "Baseline ANC (10⁹/L)", "days_anc_le_0_5": "Days ANC ≤ 0.5",
    "days_anc_le_0_1": "Days ANC ≤ 0.1", "late_nadir": "Late ANC nadir (10⁹/L)",
    "late_nadir_day": "Late nadir (day)", "early_grade": "Early ICAHT grade",
    "late_grade": "Late ICAHT grade", "early_rule": "Early rule", "late_rule": "Late rule",
    "anc": "ANC (10⁹/L)", "plt": "PLT (10⁹/L)", "retic": "RETIC (10⁹/L)", "hgb": "HGB (g/L)",
    "anc_day": "ANC day", "plt_day": "PLT day", "retic_day": "RETIC day", "hgb_day": "HGB day",
    "cellularity": "Cellularity (%)", "reference_day": "Reference day",
    "recorded_criteria": "Recorded criteria", "compared": "Compared",
}
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_UNIT_WORDS = (("ug", "µg"), ("uL", "µL"), ("ul", "µL"), ("umol", "µmol"), ("um", "µm"))


def display_unit(text: str) -> str:
    """"copies/ug gDNA" -> "copies/µg gDNA", "cells/uL" -> "cells/µL", "10^9/L" -> "10⁹/L": the
    micro sign and superscripts on screen and in figures (units are stored and exported in
    ASCII)."""
    import re

    for ascii_, micro in _UNIT_WORDS:
        text = re.sub(rf"(?<![A-Za-z]){ascii_}(?=[/ )]|$|[A-Z])", micro, text)
    # 10^9/L as written in print (10⁹/L); the files keep the ASCII caret
    return re.sub(r"10\^(\d+)", lambda m: "10" + m[1].translate(_SUPERSCRIPT), text)


def column_label(name: str) -> str:
    """A table header for a snake_case column: known names spelled out ("p_value" -> "p",
    "auc_0_28" -> "AUC0-28 (day 0-28)"), `_pct` as (%), `n_` as "n ", else words."""
    import re

    if name in _LABELS:
        return _LABELS[name]
    if name != name.lower():              # analyte codes (CAR_QPCR) and headers already set
        return display_unit(name)
    if m := re.fullmatch(r"auc_(\d+)_(\d+)", name):
        return f"AUC{m[1]}-{m[2]}"
    words = name.replace("_pct", " (%)").replace("_", " ").strip()
    if words.startswith("n "):
        return display_unit(words)
    return display_unit(words[:1].upper() + words[1:]) if words else name


def display_frame(df: Any, *, keep: Iterable[str] = ()) -> Any:
    """A result table (polars) as shown on screen: text columns filled with "" (an empty cell
    is empty), unit columns with the micro sign ("copies/µg gDNA"; the CSV keeps ASCII).
    Numbers stay numbers: the grid shows their missing values as blank through its
    `placeholder` (components.render.show_table). Columns in `keep` are left as they are."""
    import polars as pl

    if df.height == 0:
        return df
    keep = set(keep)
    exprs = []
    for name, dtype in df.schema.items():
        if name in keep or dtype != pl.String:
            continue
        col = pl.col(name)
        if name == "unit" or name == "units" or name.endswith("_unit"):
            col = col.map_elements(display_unit, return_dtype=pl.String)
        exprs.append(col.fill_null("").alias(name))
    return df.with_columns(exprs) if exprs else df


def display_units(fig: go.Figure) -> go.Figure:
    """`display_unit` on a figure's title, axis titles, legend names and annotations (units
    arrive in ASCII from the data: "copies/ug gDNA"). Returns the same figure."""
    if fig.layout.title and fig.layout.title.text:
        fig.layout.title.text = display_unit(fig.layout.title.text)

    def fix(axis: go.layout.XAxis | go.layout.YAxis) -> None:
        if axis.title and axis.title.text:
            axis.title.text = display_unit(axis.title.text)
    fig.for_each_xaxis(fix)
    fig.for_each_yaxis(fix)
    for a in fig.layout.annotations or ():
        if a.text:
            a.text = display_unit(a.text)
    for t in fig.data:
        if getattr(t, "name", None):
            t.name = display_unit(t.name)
    return fig
