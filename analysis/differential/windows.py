"""Day windows of a comparison: the named windows (baseline, D14, D28, M3, M6, M12), the
"start:end" parser, and the choice of each patient's one sample in a window (the sample closest
to the window centre; baseline: the sample on or before day 0 closest to day 0)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["Window", "WINDOWS", "parse_window", "window_values"]


@dataclass(frozen=True)
class Window:
    """A day window: samples with lo <= day <= hi (None = open); the one closest to `centre`
    represents the patient."""

    name: str
    centre: float
    lo: int | None
    hi: int | None

    def describe(self) -> str:
        lo = "" if self.lo is None else str(self.lo)
        hi = "" if self.hi is None else str(self.hi)
        if self.lo is None:
            span = f"day <= {hi}"
        elif self.hi is None:
            span = f"day >= {lo}"
        else:
            span = f"days {lo} to {hi}"
        return f"{self.name}: {span}, the sample closest to day {self.centre:g} per patient"


WINDOWS: dict[str, Window] = {
    "baseline": Window("baseline", 0, None, 0),
    "D14": Window("D14", 14, 11, 17),
    "D28": Window("D28", 28, 21, 35),
    "M3": Window("M3", 90, 76, 104),
    "M6": Window("M6", 180, 150, 210),
    "M12": Window("M12", 365, 305, 425),
}


def parse_window(window: str | Window) -> Window:
    """A named window (baseline, D14, D28, M3, M6, M12; case-insensitive) or "start:end" days."""
    if isinstance(window, Window):
        return window
    text = str(window).strip()
    for name, w in WINDOWS.items():
        if text.lower() == name.lower():
            return w
    if ":" in text:
        lo_s, hi_s = text.split(":", 1)
        try:
            lo, hi = int(lo_s), int(hi_s)
        except ValueError:
            lo = hi = None
        if lo is not None and hi is not None and lo <= hi:
            return Window(f"days {lo}:{hi}", (lo + hi) / 2, lo, hi)
    raise ValueError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)} or "
                     "'start:end' in days (e.g. 21:35)")


def window_values(values: pl.DataFrame, *, window: str | Window) -> pl.DataFrame:
    """One row per patient and feature: the sample in the window closest to its centre (ties:
    the earlier). Same columns as `values`."""
    w = parse_window(window)
    df = values
    if w.lo is not None:
        df = df.filter(pl.col("day") >= w.lo)
    if w.hi is not None:
        df = df.filter(pl.col("day") <= w.hi)
    return (df.with_columns((pl.col("day") - w.centre).abs().alias("_dist"))
            .sort("subject_id", "feature", "_dist", "day")
            .group_by("subject_id", "feature", maintain_order=True).first()
            .drop("_dist"))
