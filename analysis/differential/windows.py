"""Day windows of a comparison: the named windows (baseline, D14, D28, M3, M6, M12), the
"start:end" parser, and the choice of each patient's one sample in a window (the sample closest
to the window centre; baseline: the sample on or before day 0 closest to day 0)."""

from __future__ import annotations

import polars as pl

from analysis.vocab import WINDOWS, DayWindow

__all__ = ["Window", "WINDOWS", "parse_window", "window_values"]

# A window is analysis.vocab.DayWindow (one type, one parser for every layer); `Window` and
# `parse_window` are its names here.
Window = DayWindow
parse_window = DayWindow.parse


def window_values(values: pl.DataFrame, *, window: str | Window) -> pl.DataFrame:
    """One row per patient and feature: the sample in the window closest to its centre (ties:
    the earlier). Same columns as `values`."""
    w = parse_window(window)
    df = values.filter(w.contains("day"))
    return (df.with_columns((pl.col("day") - w.centre).abs().alias("_dist"))
            .sort("subject_id", "feature", "_dist", "day")
            .group_by("subject_id", "feature", maintain_order=True).first()
            .drop("_dist"))
