"""Standard figures: the ones the slide deck (`cli.py export`) and the Slides page build
headless from a study and a cohort.

A figure module registers a builder next to its factories:

    @standard_figure("kinetics", title="CAR-T expansion and persistence", order=30)
    def _kinetics_slide(study, cohort, groups) -> FigureSpec | None: ...

A builder returns None when the study lacks the data (the deck then skips that slide).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
import polars as pl

__all__ = ["FigureSpec", "StandardFigure", "standard_figure", "standard_figures"]


@dataclass(frozen=True)
class FigureSpec:
    """A finished figure with the data behind it and the parameters that made it."""

    key: str
    title: str
    fig: go.Figure
    data: pl.DataFrame | None = None
    params: dict[str, Any] = field(default_factory=dict)
    caption: str = ""


@dataclass(frozen=True)
class StandardFigure:
    key: str
    title: str
    order: int
    build: Callable[..., FigureSpec | None]


_REGISTRY: dict[str, StandardFigure] = {}


def standard_figure(key: str, *, title: str, order: int
                    ) -> Callable[[Callable[..., FigureSpec | None]],
                                  Callable[..., FigureSpec | None]]:
    def deco(fn: Callable[..., FigureSpec | None]) -> Callable[..., FigureSpec | None]:
        _REGISTRY[key] = StandardFigure(key, title, order, fn)
        return fn
    return deco


def standard_figures() -> list[StandardFigure]:
    """All registered standard figures in deck order (imports every figure module once)."""
    import components.figures as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name != "registry":
            importlib.import_module(f"components.figures.{mod.name}")
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.key))
