"""The records a view returns: a finished figure (`FigureSpec`) or a finished table
(`TableSpec`), each with the data behind it and the Params that made it.

Params are the view's input (a frozen dataclass), not a record made afterwards: the same Params
rebuild the same figure, and exports embed them (`components.export.params_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import polars as pl

__all__ = ["FigureSpec", "TableSpec"]


@dataclass(frozen=True)
class FigureSpec:
    """A figure, the data behind it (CSV download), its Params and a caption."""

    key: str
    title: str
    fig: go.Figure
    data: pl.DataFrame | None = None
    params: Any = None
    caption: str = ""


@dataclass(frozen=True)
class TableSpec:
    """A result table (what a page shows and the CSV downloads), its Params and a caption."""

    key: str
    title: str
    data: pl.DataFrame
    params: Any = None
    caption: str = ""
