"""Drawing many patients cheaply: one trace per colour instead of one per patient.

A plotly trace costs about a millisecond to build and its share of JSON to send, and a legend of
hundreds of patients is unreadable anyway. Up to `MANY_PATIENTS` keys the factories keep one
trace per patient (legend entry, click to hide). Above it they draw one trace per colour and
emphasis: the patients' rows one after another with a row of nulls between patients (plotly
breaks a line at a None), `customdata` carrying the patient for the hover. Patient colours
cycle above 17 patients (components.theme), so nothing is lost that the eye could tell apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import polars as pl

__all__ = ["MANY_PATIENTS", "is_many", "color_groups", "gapped"]

MANY_PATIENTS = 40

# emphasis of a patient's line when some patients are highlighted
NORMAL, FOCUS, FADED = "normal", "focus", "faded"


def is_many(keys: Sequence[object]) -> bool:
    """True when `keys` are too many for one trace each."""
    return len(keys) > MANY_PATIENTS


def color_groups(keys: Iterable[str], colors: Mapping[str, str],
                 highlight: Iterable[str] = ()) -> list[tuple[str, str, list[str]]]:
    """(colour, emphasis, keys) for every colour and emphasis (NORMAL, FOCUS, FADED), in the
    order the colours first appear in `keys`."""
    focus = set(highlight)
    out: dict[tuple[str, str], list[str]] = {}
    for k in keys:
        state = (FOCUS if k in focus else FADED) if focus else NORMAL
        out.setdefault((colors[k], state), []).append(k)
    return [(c, s, ks) for (c, s), ks in out.items()]


def gapped(df: pl.DataFrame, *, key: str, order: str | None = None) -> pl.DataFrame:
    """The rows of `df` by `key` (and `order` within a key), each key's rows followed by one
    row that is null everywhere but `key`: a line drawn through it breaks between keys."""
    sep = df.select(key).unique().with_columns(pl.lit(1, dtype=pl.Int8).alias("_sep"))
    both = pl.concat([df.with_columns(pl.lit(0, dtype=pl.Int8).alias("_sep")), sep],
                     how="diagonal_relaxed")
    by = [key, "_sep"] + ([order] if order else [])
    return both.sort(by, maintain_order=True).drop("_sep")
