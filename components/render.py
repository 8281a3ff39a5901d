"""The one place that shows a figure or a result table, with the same download row everywhere.

`show_figure(fig, key=..., name=..., data=...)` draws a plotly figure and offers the data behind
it as formula-safe CSV; `show_table` does the same for a result table. Pages never call
`st.plotly_chart` themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, is_dataclass
from typing import Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from components.export import csv_bytes

__all__ = ["show_figure", "show_table", "show_params"]

_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def _file_stem(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).strip("_") or "fig"


def show_figure(fig: go.Figure, *, key: str, name: str, data: pl.DataFrame | None = None,
                params: Any = None, on_select: str | None = None,
                selection_mode: Iterable[str] = ("box", "lasso")) -> Any:
    """Draw `fig` with a download row (data as CSV). Returns the selection state when
    `on_select="rerun"`, else None."""
    kwargs: dict[str, Any] = {"key": key, "config": _CONFIG, "theme": None}
    if on_select:
        kwargs.update(on_select=on_select, selection_mode=tuple(selection_mode))
    event = st.plotly_chart(fig, **kwargs)
    stem = _file_stem(name)
    if data is not None:
        st.download_button("Data (CSV)", data=lambda d=data: csv_bytes(d),
                           file_name=f"{stem}.csv", mime="text/csv", key=f"{key}-csv",
                           on_click="ignore", icon=":material/download:")
    return event if on_select else None


def show_table(df: pl.DataFrame, *, key: str, name: str, height: int | str = "auto",
               column_config: dict | None = None) -> None:
    """A result table with its CSV download."""
    st.dataframe(df, key=key, height=height, hide_index=True, column_config=column_config)
    st.download_button("Table (CSV)", data=lambda d=df: csv_bytes(d),
                       file_name=f"{_file_stem(name)}.csv", mime="text/csv", key=f"{key}-csv",
                       on_click="ignore", icon=":material/download:")


def show_params(params: Any) -> None:
    """The page's parameters (a frozen dataclass), so a figure can be made again."""
    values = asdict(params) if is_dataclass(params) else dict(params)
    with st.expander("Parameters of this view"):
        st.json(values, expanded=True)
