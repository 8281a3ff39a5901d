"""Colours and axis titles the clone and repertoire figures share: the class of a clone
against its reference sample (expanded, persistent, contracted, lost, new), in one order."""

from __future__ import annotations

__all__ = ["CLASS_COLORS", "CLASSES_ORDER", "GREY", "DAY_TITLE"]

GREY = "#BBBBBB"
DAY_TITLE = "Study day (0 = CAR-T infusion)"
CLASS_COLORS = {"reference": "#444444", "expanded": "#D55E00", "persistent": "#56B4E9",
                "contracted": "#0072B2", "lost": "#BBBBBB", "new": "#E69F00",
                "before reference": "#DDDDDD"}
CLASSES_ORDER = ("expanded", "persistent", "contracted", "lost", "new")
