"""The records a view returns: a finished figure (`FigureSpec`) or a finished table
(`TableSpec`), each with the data behind it, the Params that made it, the view that made it and
the cohort it was made for.

Params are the view's input (a frozen dataclass), not a record made afterwards: the same Params
rebuild the same figure, and exports embed them (`components.export.params_dict`). `view` (the
dotted name of the view function, e.g. "views.outcomes.km") and `cohort` are what
`views.code.snippet` needs to write the Python or `cli.py export --view` line that makes the
record again; the `@recipe` decorator fills both for every view.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import plotly.graph_objects as go
import polars as pl

if TYPE_CHECKING:
    from analysis.cohort import Cohort, Focus

__all__ = ["FigureSpec", "TableSpec", "recipe", "view_name"]


@dataclass(frozen=True)
class FigureSpec:
    """A figure, the data behind it (CSV download), its Params and a caption; `view` and
    `cohort` say which view made it for whom (filled by `@recipe`)."""

    key: str
    title: str
    fig: go.Figure
    data: pl.DataFrame | None = None
    params: Any = None
    caption: str = ""
    view: str = ""
    cohort: Cohort | None = None
    focus: Focus | None = None


@dataclass(frozen=True)
class TableSpec:
    """A result table (what a page shows and the CSV downloads), its Params and a caption;
    `view` and `cohort` as in FigureSpec."""

    key: str
    title: str
    data: pl.DataFrame
    params: Any = None
    caption: str = ""
    view: str = ""
    cohort: Cohort | None = None
    focus: Focus | None = None

    @property
    def empty(self) -> bool:
        """Whether the table has no row (a page says so instead of drawing an empty grid)."""
        return self.data.height == 0


P = ParamSpec("P")
R = TypeVar("R")


def view_name(fn: Callable[..., Any]) -> str:
    """"views.outcomes.km" for the function `km` of views/outcomes.py."""
    return f"{fn.__module__}.{fn.__qualname__}"


def recipe(fn: Callable[P, R]) -> Callable[P, R]:
    """Mark a view function `f(study, *, cohort, params, focus=None) -> FigureSpec | TableSpec`
    (or a list of them, or None when the study lacks the data): every record it returns carries
    the view's dotted name, the cohort and the focus it was called with."""
    name = view_name(fn)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        out = fn(*args, **kwargs)
        stamp = {"view": name, "cohort": kwargs.get("cohort"), "focus": kwargs.get("focus")}

        def mark(spec: Any) -> Any:
            # the outermost view names the record: a view that builds on another (the patient
            # slide on the timeline) is the one whose Params make it again
            if isinstance(spec, (FigureSpec, TableSpec)):
                return dataclasses.replace(spec, **stamp)
            return spec

        if isinstance(out, list):
            return [mark(s) for s in out]  # type: ignore[return-value]
        if isinstance(out, tuple):
            return tuple(mark(s) for s in out)  # type: ignore[return-value]
        return mark(out)

    wrapper.__recipe__ = True  # type: ignore[attr-defined]
    return wrapper
