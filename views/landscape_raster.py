"""The Immune landscape's embedding above about a million cells: drawn server-side as a
datashader raster of every cell of the cohort (coloured by category, gene or score), drawn
again for each window the user zooms or pans to, and drawn as points with hover once the
window holds few enough cells. Box and lasso selections are taken in data coordinates and
tested against every cell, not against what was drawn.

`raster` is the recipe (Study + cohort + RasterParams -> FigureSpec); `next_window` turns
the chart's zoom, pan or reset (components/chart_events.py) into the window to draw next,
`selected_in` its box or lasso into cells. The thresholds are study settings
(`raster_above`, `raster_points_below` in analysis/rules.py). The embedding of smaller studies
is views/landscape.py's `embedding` (WebGL points of a stratified subsample).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from analysis import embedding as emb
from analysis import signatures as sig
from analysis.cohort import Cohort, apply_cohort, response_groups
from analysis.composition import DEFAULT_WINDOWS
from analysis.rules import DEFAULT_RULES, rules_for
from components.figures import landscape as figs
from components.figures import raster as rfig
from components.theme import GROUP_COLORS, patient_colors
from views.landscape import COLUMNS, RNA, LandscapeParams
from views.spec import FigureSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["RasterParams", "RASTER_ABOVE", "POINTS_BELOW", "use_raster", "raster",
           "window_of", "next_window", "dragmode_after", "selected_in", "zoomed", "DragMode"]

# the defaults of the study settings raster_above / raster_points_below
RASTER_ABOVE = DEFAULT_RULES.raster_above
POINTS_BELOW = DEFAULT_RULES.raster_points_below
Range = tuple[float, float]
Window = tuple[Range, Range]
DragMode = Literal["zoom", "pan", "select", "lasso"]
DRAG_MODES: tuple[DragMode, ...] = ("zoom", "pan", "select", "lasso")
# fixed colours of the categorical colourings (as the point view draws them)
_FIXED_COLORS = {"response_group": GROUP_COLORS,
                 "focus": {"in focus": "#D55E00", "other": "#CCCCCC"},
                 "car_status": {"CAR+": "#D55E00", "CAR-": "#BBBBBB"}}


@dataclass(frozen=True)
class RasterParams:
    """The landscape's choice (`landscape`: basis, colour, gene, signature) and the window
    shown: `x_range`/`y_range` in embedding units (None: every cell), the image size in
    pixels, and the number of cells in the window at or below which points are drawn (None:
    the study's `raster_points_below`)."""

    landscape: LandscapeParams
    x_range: Range | None = None
    y_range: Range | None = None
    width: int = 900
    height: int = 600
    points_below: int | None = None     # None: the study's raster_points_below
    dragmode: DragMode = "zoom"         # the chart's tool, kept when a zoom or pan redraws it


def use_raster(study: Study, *, source: str = RNA) -> bool:
    """True when the study's single-cell embedding has more cells than its `raster_above`
    setting."""
    return source == RNA and study.has("single_cell") and \
        study.single_cell.n_obs > rules_for(study).raster_above


def zoomed(params: RasterParams, *, x_range: Range | None, y_range: Range | None
           ) -> RasterParams:
    """The same view on another window (None: every cell)."""
    return replace(params, x_range=x_range, y_range=y_range)


def _cells(study: Study, cohort: Cohort | None, basis: str) -> tuple[pl.DataFrame, np.ndarray]:
    """The cohort's cells (cell table rows with response_group) and their coordinates."""
    return _cohort_cells(study, None if cohort == Cohort() else cohort, basis)[:2]


@lru_cache(maxsize=4)
def _cohort_cells(study: Study, cohort: Cohort | None, basis: str
                  ) -> tuple[pl.DataFrame, np.ndarray, tuple[Range, Range]]:
    """`_cells` plus the extent of the coordinates, kept for the next zoom (a few per
    process: each holds the cohort's cell table)."""
    coords = emb.load_embedding(study, basis=basis).coords
    cells = emb.cell_table_cached(study)
    if cohort is not None:
        cells = apply_cohort(cells, cohort, groups=response_groups(study))
        xy = coords[cells.get_column("cell").to_numpy()]
    else:
        xy = coords      # every cell, in file order (the cell table's order)
    return cells, xy, emb.extent(xy)


@lru_cache(maxsize=16)
def _categories(study: Study, cohort: Cohort | None, basis: str, color: str) -> tuple[str, ...]:
    """Every category of `color` among the cohort's cells (sorted): the raster's colours are
    assigned over these, not over those in the window, so zooming keeps each one's colour."""
    if color == "window":
        return tuple(sorted([w.label for w in DEFAULT_WINDOWS] + ["other"]))
    if color in _FIXED_COLORS and color != "response_group":
        return tuple(sorted(_FIXED_COLORS[color]))
    cells = _cohort_cells(study, cohort, basis)[0]
    if color not in cells.columns:
        return ()
    return tuple(sorted(cells.get_column(color).cast(pl.String).drop_nulls().unique()
                        .to_list()))


def _palette(study: Study, cohort: Cohort | None, basis: str, color: str,
             cats: pl.Series) -> dict[str, str]:
    """Category -> colour over every category of the cohort (then any other in `cats`), the
    fixed colours (patients, response groups, CAR status, focus) taking precedence: the same
    colours for the raster of every cell, a zoomed raster and the points of a small window."""
    order = list(_categories(study, None if cohort == Cohort() else cohort, basis, color))
    order += sorted(set(cats.drop_nulls().unique().to_list()) - set(order))
    fixed = patient_colors(study.subject_ids) if color == "subject_id" else \
        _FIXED_COLORS.get(color, {})
    # cells without a category: grey, as the raster draws them (not the first colour)
    return {**figs.category_colors(order), **{k: v for k, v in fixed.items() if k in order},
            **({} if "NA" in order else {"NA": rfig.NO_CATEGORY})}


def _hover_details(fig: Any, pts: pl.DataFrame, *, value: str | None) -> None:
    """Hover of each drawn cell: its type, patient, day and sample (and the colouring value),
    matched to the traces through their cell numbers. Done here and not in the point view
    (views/landscape.py), whose subsample can be far larger: a zoomed window has at most
    `raster_points_below` cells."""
    parts = [pl.col(c).cast(pl.String).fill_null("NA") for c in ("cell_type", "subject_id")
             if c in pts.columns]
    if "day" in pts.columns:
        parts.append(pl.lit("day ") + pl.col("day").cast(pl.String).fill_null("NA"))
    if "sample_id" in pts.columns:
        parts.append(pl.lit("sample ") + pl.col("sample_id").cast(pl.String).fill_null("NA"))
    if not parts:
        return
    labels = pts.select(pl.col("cell").cast(pl.Int64), pl.concat_str(parts, separator="<br>")
                        .alias("hover"))
    tail = f"<br>{value}: %{{marker.color:.2f}}" if value else ""
    for trace in fig.data:
        if trace.customdata is None:
            continue
        ids = pl.DataFrame({"cell": np.asarray(trace.customdata).astype(np.int64).ravel()})
        trace.text = ids.join(labels, on="cell", how="left", maintain_order="left") \
            .get_column("hover").to_list()
        trace.hovertemplate = f"%{{text}}{tail}<extra></extra>"


def _values(study: Study, p: LandscapeParams) -> tuple[np.ndarray | None, str | None]:
    """Per-cell values that colour the cells (every cell of the file) and the colour bar's
    title, or (None, None) for a categorical colour."""
    if p.color_by == "Gene" and p.gene:
        return emb.gene_vector(study, gene=p.gene), \
            f"{p.gene}<br>{sig.expression_units(study)}"
    if p.color_by == "Signature score" and p.signature is not None:
        got = sig.cell_scores(study, gene_sets=[p.signature], method=sig.DEFAULT_METHOD)
        return got.cells.get_column(p.signature.name).to_numpy(), \
            f"{p.signature.name}<br>{sig.SCORE_UNITS[sig.DEFAULT_METHOD]}"
    return None, None


@recipe
def raster(study: Study, *, cohort: Cohort | None = None, params: RasterParams,
           focus: Focus | None = None) -> FigureSpec:
    """The cohort's cells in the window of `params`: a raster of all of them (count per
    category, or mean value per pixel), or, when the window holds at most `points_below`
    cells, those cells as points with hover and their row numbers for selection. The data is
    the drawn points, or the number of cells per colour category in the window."""
    p = params.landscape
    cells, xy, (full_x, full_y) = _cohort_cells(study, None if cohort == Cohort() else cohort,
                                                p.basis)
    x_range = params.x_range or full_x
    y_range = params.y_range or full_y
    inside = emb.in_window(xy, x_range=x_range, y_range=y_range)
    n_in = int(inside.sum())
    every = n_in == cells.height
    limit = rules_for(study).raster_points_below if params.points_below is None else \
        params.points_below
    values, bar = _values(study, p)
    color = COLUMNS.get(p.color_by, "cell_type")
    basis = p.basis.removeprefix("X_").split(" ")[0].upper()
    windowed = params.x_range is not None or params.y_range is not None
    where = f" in this window (of {cells.height:,})" if windowed else ""
    if n_in <= limit:
        pts = cells.filter(pl.Series(inside)).with_columns(
            pl.Series("x", xy[inside, 0]), pl.Series("y", xy[inside, 1]))
        pts = emb.annotate_points(pts, windows=DEFAULT_WINDOWS, focus=focus)
        if values is not None:
            color = "expression" if p.color_by == "Gene" else "score"
            pts = pts.with_columns(pl.Series(color, values[pts.get_column("cell").to_numpy()]))
        colors = {} if values is not None else \
            _palette(study, cohort, p.basis, color, pts.get_column(color).cast(pl.String))
        fig = figs.embedding_scatter(pts, color=color, continuous=values is not None,
                                     colors=colors, basis=basis, colorbar_title=bar,
                                     labels="cell_type" if p.label_types else None)
        _hover_details(fig, pts, value=color if values is not None else None)
        # the window's coordinates, as on the raster it was zoomed from
        fig.update_xaxes(range=list(x_range), showticklabels=True)
        fig.update_yaxes(range=list(y_range), showticklabels=True)
        keep = [c for c in ("cell", "subject_id", "sample_id", "day", "cell_type")
                if c in pts.columns]
        fig.update_layout(dragmode=params.dragmode)
        return FigureSpec("landscape_raster", "Immune landscape", fig, pts.select(keep),
                          params, f"Showing all {n_in:,} cells{where} as points; double-click "
                          "to see every cell.")
    sub = cells if every else cells.filter(pl.Series(inside))
    x, y = (xy[:, 0], xy[:, 1]) if every else (xy[inside, 0], xy[inside, 1])
    size = {"x_range": x_range, "y_range": y_range, "width": params.width,
            "height": params.height}
    if values is not None:
        v = values[sub.get_column("cell").to_numpy()]
        hi = float(np.nanpercentile(v, 99.5)) if v.size else 1.0
        span = (0.0, hi if hi > 0 else float(np.nanmax(v, initial=1.0)) or 1.0)
        rgba = rfig.shade_values(x, y, v, span=span, **size)
        fig = rfig.raster_figure(rgba, x_range=x_range, y_range=y_range,
                                 colorbar=(bar or "", *span), basis=basis,
                                 height=params.height)
        data = pl.DataFrame({"cells_in_window": [n_in], "mean": [float(np.nanmean(v))],
                             "fraction_above_zero": [float(np.mean(v > 0))]})
    else:
        labels = emb.annotate_points(sub.select("cell", "day", "subject_id",
                                                *[c for c in ("car_positive",) if c in
                                                  sub.columns]),
                                     windows=DEFAULT_WINDOWS, focus=focus) \
            if color in ("window", "car_status", "focus") else sub
        cats = labels.get_column(color).cast(pl.String)
        palette = _palette(study, cohort, p.basis, color, cats)
        present = set(cats.drop_nulls().unique().to_list())
        order = [c for c in palette if c != "NA" or c in present]   # no category: code -1
        codes = cats.replace_strict(order, list(range(len(order))), default=-1,
                                    return_dtype=pl.Int32).to_numpy()
        rgba = rfig.shade_categories(x, y, codes, colors=[palette[c] for c in order], **size)
        fig = rfig.raster_figure(rgba, x_range=x_range, y_range=y_range,
                                 legend={c: palette[c] for c in order if c in present},
                                 basis=basis,
                                 height=params.height)
        data = (pl.DataFrame({color: cats}).group_by(color).len("cells_in_window")
                .sort(color))
    fig.update_layout(dragmode=params.dragmode)
    return FigureSpec("landscape_raster", "Immune landscape", fig, data, params,
                      f"All {n_in:,} cells{where} drawn as a raster (each pixel: "
                      + ("the mean value of its cells" if values is not None else
                         "the colours of its cells' categories, opacity by count")
                      + f"); drag to zoom in (double-click: every cell); a window of at "
                      f"most {limit:,} cells is drawn as points with hover. Box and lasso "
                      "select from every cell, drawn or not.")


def window_of(event: Mapping[str, Any] | None) -> tuple[Range, Range] | None:
    """The (x range, y range) of the last box drawn on the chart, or None."""
    boxes = ((event or {}).get("selection") or {}).get("box") or []
    if not boxes:
        return None
    box = boxes[-1]
    xs, ys = [float(v) for v in box.get("x", [])], [float(v) for v in box.get("y", [])]
    if len(xs) < 2 or len(ys) < 2 or min(xs) == max(xs) or min(ys) == max(ys):
        return None
    return (min(xs), max(xs)), (min(ys), max(ys))


def next_window(event: Mapping[str, Any] | None, *, current: Window | None
                ) -> Window | None:
    """The window to draw after the chart reported `event` (components/chart_events.py):
    `{"x": [lo, hi], "y": [lo, hi]}` (a zoom or pan, in data units) -> that window, ordered;
    `{"reset": True}` (double-click, autorange) -> None (every cell); no event, or ranges that
    are not two distinct finite numbers per axis -> `current` unchanged."""
    if not event:
        return current
    if event.get("reset"):
        return None
    out = []
    for axis in ("x", "y"):
        got = event.get(axis)
        if not isinstance(got, list | tuple) or len(got) != 2:
            return current
        try:
            lo, hi = sorted(float(v) for v in got)
        except (TypeError, ValueError):
            return current
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi:
            return current
        out.append((lo, hi))
    return out[0], out[1]


def dragmode_after(event: Mapping[str, Any] | None, *, current: DragMode) -> DragMode:
    """The chart's tool as the last zoom or pan left it (`event["dragmode"]`), so the redrawn
    chart keeps it; `current` when the event names none or an unknown one."""
    got = (event or {}).get("dragmode")
    return got if got in DRAG_MODES else current


def selected_in(study: Study, *, cohort: Cohort | None = None, params: RasterParams,
                event: Any) -> tuple[int, ...]:
    """Row numbers (`cell`) of every cell of the cohort inside the chart's box or lasso,
    tested in data coordinates against all cells (not only those drawn)."""
    sel = (event or {}).get("selection") or {}
    boxes, lassos = sel.get("box") or [], sel.get("lasso") or []
    if not boxes and not lassos:
        return ()
    cells, xy = _cells(study, cohort, params.landscape.basis)
    mask = np.zeros(xy.shape[0], dtype=bool)
    for b in boxes:
        mask |= emb.in_window(xy, x_range=b.get("x", []), y_range=b.get("y", []))
    for lasso in lassos:
        mask |= emb.in_polygon(xy, xs=lasso.get("x", []), ys=lasso.get("y", []))
    return tuple(int(c) for c in cells.get_column("cell").to_numpy()[mask])
