"""Colours and the plotly template: one colour per patient and per response group, everywhere.

Palettes are colour-blind safe: Okabe & Ito (2008) for the first eight patients, then Paul Tol's
"muted" scheme; response groups and categories use fixed Okabe-Ito colours. Patient colours are
assigned over the study's full, sorted patient list, so a patient keeps its colour whatever the
cohort filter shows.
"""

from __future__ import annotations

from collections.abc import Iterable

import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["OKABE_ITO", "TOL_MUTED", "GROUP_COLORS", "RESPONSE_COLORS", "GRADE_COLORS",
           "patient_colors", "TEMPLATE", "FONT", "label_decades", "PLT_RUG_COLOR",
           "PATIENT_PALETTE"]

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

GROUP_COLORS = {"Responder": "#0072B2", "Non-responder": "#D55E00", "Not evaluable": "#999999"}
RESPONSE_COLORS = {"CR": "#009E73", "PR": "#56B4E9", "NR": "#D55E00", "NE": "#BBBBBB",
                   "not assessed": "#EEEEEE"}
# ASTCT / CTCAE grades 1-5: light to dark (sequential, colour-blind safe: Tol YlOrBr)
GRADE_COLORS = {0: "#FFFFE5", 1: "#FEE391", 2: "#FB9A29", 3: "#CC4C02", 4: "#662506",
                5: "#000000"}
FONT = "Inter, Helvetica Neue, Arial, sans-serif"


def label_decades(fig: go.Figure) -> go.Figure:
    """Every log axis of `fig` labelled at decades only (1, 10, 100 as powers of ten), with
    unlabelled minor ticks at 2-9: plotly's default labels "2" and "5" between decades read as
    values, and a short range can end with a lone "10k". Returns the same figure."""
    def fix(axis) -> None:
        if axis.type == "log":
            axis.update(dtick=1, exponentformat="power", showexponent="all",
                        minor={"ticks": "outside", "ticklen": 3, "dtick": "D1",
                               "showgrid": False})
    fig.for_each_xaxis(fix)
    fig.for_each_yaxis(fix)
    return fig


PATIENT_PALETTE = tuple(_PATIENT_PALETTE)


def patient_colors(subject_ids: Iterable[str]) -> dict[str, str]:
    """subject_id -> colour, stable for the study's full patient list (sorted)."""
    ids = sorted(set(subject_ids))
    return {sid: _PATIENT_PALETTE[i % len(_PATIENT_PALETTE)] for i, sid in enumerate(ids)}


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
