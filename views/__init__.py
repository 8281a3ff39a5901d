"""Recipes: one module per page, Study + cohort + Params -> FigureSpec / TableSpec (no
streamlit). The page, the Slides page, the deck and `cli.py export` call the same view, so what
they draw cannot drift apart. `views.DECK` is the standard deck (views/deck.py)."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # DECK imports every page's views: only when asked for, so `import views.spec` stays light
    if name == "DECK":
        from views.deck import DECK

        return DECK
    raise AttributeError(f"module 'views' has no attribute {name!r}")
