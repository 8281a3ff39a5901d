"""The clinical figures' shared marks: one marker symbol, colour and size per kind of event
(responses, CRS/ICANS, transfusions, HSCT, progression, death), used by the swimmer plot and the
blood-count transfusion rug, and the translucent fill of a group colour (IQR ribbons, KM bands).
"""

from __future__ import annotations

from components.theme import RESPONSE_COLORS

__all__ = ["EVENT_STYLE", "rgba"]

# kind -> (marker symbol, colour, size); CRS/ICANS kinds carry their grade ("CRS G2").
EVENT_STYLE: dict[str, tuple[str, str, int]] = {
    "CR": ("square", RESPONSE_COLORS["CR"], 11),
    "PR": ("square", RESPONSE_COLORS["PR"], 11),
    "NR": ("square", RESPONSE_COLORS["NR"], 11),
    "NE": ("square-open", "#777777", 10),
    "CRS": ("diamond", "#CC79A7", 10),
    "ICANS": ("triangle-up", "#8E44AD", 10),
    "RBC transfusion": ("line-ns-open", "#B2182B", 8),
    "PLT transfusion": ("line-ns-open", "#E69F00", 8),
    "HSCT": ("star", "#000000", 13),
    # not NR's vermilion: a progression marker on an NR lane must read as its own event
    "Progression": ("x", "#882255", 12),
    "Death": ("cross", "#000000", 12),
}


def rgba(hex_color: str, alpha: float) -> str:
    """A hex colour as rgba() with `alpha` (a ribbon or band in its line's colour)."""
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
