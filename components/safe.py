"""Text from data shown as text: markdown escaping for Streamlit and no live links in figures.

Subject ids, study titles, event terms and URL parameters come from files and links that
anyone may have written. Streamlit renders the strings given to st.markdown, st.caption,
st.info, st.warning, st.error, st.success, titles and widget labels as GitHub-flavoured
markdown (links, images, autolinked URLs, `:material/...:` icons, `:red[...]` colours, LaTeX);
plotly renders `<a href>` in trace text, hover text, names, tick labels and annotations as
live links (in the app and in exported SVG/PDF).

- `md(value)`: a string that markdown shows literally. The characters that open a construct
  are backslash-escaped (CommonMark 2.4: any ASCII punctuation may be): links and images
  (`[ ] !`), raw HTML, autolinks and entities (`< > &`), emphasis and code (`* _ ~` and backticks),
  LaTeX (`$`), tables (`|`), headings (`#`), e-mail autolinks (`@`); a colon before a letter
  or slash (`https\\://`, Streamlit's `:red[...]`, `:material/...:` and emoji shortcodes);
  the dot of `www.`; a list marker at the start. Line breaks become spaces, so a value cannot
  start a block. Plain words, hyphens, commas and "days 7..28" stay as they are.
- `unlink_figure(fig)`: the figure without `<a ...>` / `</a>` tags in any string it carries
  (the link's text stays); the figure is returned unchanged (same object) when it has none.

No streamlit here: render.py and export.py call these before drawing or writing a figure.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import plotly.graph_objects as go

__all__ = ["md", "unlink", "unlink_figure"]

_ALWAYS = re.compile(r"([\\`*_{}\[\]<>#+!|~$@&])")
_COLON = re.compile(r":(?=[A-Za-z/])")
_WWW = re.compile(r"(?i)\b(www)\.")
_LIST_START = re.compile(r"^(\s*)([-=]|\d+(?=[.)]))")
_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
_ANCHOR = re.compile(r"<\s*/?\s*a(?=[\s>/])[^>]*>?", re.IGNORECASE)


def md(value: Any) -> str:
    """`value` as markdown that renders as its literal text (None -> "")."""
    if value is None:
        return ""
    text = _ALWAYS.sub(r"\\\1", _BREAKS.sub(" ", str(value)))
    text = _WWW.sub(r"\1\\.", _COLON.sub(r"\\:", text))
    return _LIST_START.sub(lambda m: m.group(1) + ("\\" + m.group(2) if not m.group(2).isdigit()
                                                   else m.group(2) + "\\"), text)


def unlink(text: str) -> str:
    """`text` without plotly link tags (`<a href=...>`, `</a>`)."""
    return _ANCHOR.sub("", text) if "<" in text else text


def _has_anchor(text: str) -> bool:
    return "<" in text and _ANCHOR.search(text) is not None


def _strings_clean(items: Any) -> bool:
    """True when `items` (an array or list) holds only strings and none can carry a tag:
    one join and one search instead of a check per element (300k hover texts: ~10 ms)."""
    try:
        joined = "\x00".join(items)
    except TypeError:
        return False
    return "<" not in joined


def _clean(value: Any) -> tuple[Any, bool]:
    """(value without link tags, whether anything changed), for any plotly JSON value."""
    if isinstance(value, str):
        if _has_anchor(value):
            return unlink(value), True
        return value, False
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in ("U", "O", "S"):
            return value, False
        flat = value.ravel()
        if value.dtype.kind == "S" or _strings_clean(flat.tolist() if value.dtype.kind == "U"
                                                     else flat):
            return value, False
        changed: dict[int, Any] = {}
        for i, v in enumerate(flat):
            new, hit = _clean(v)
            if hit:
                changed[i] = new
        if not changed:
            return value, False
        out = flat.astype(object)
        for i, v in changed.items():
            out[i] = v
        return out.reshape(value.shape), True
    if isinstance(value, (list, tuple)):
        if _strings_clean(value):
            return value, False
        items = [_clean(v) for v in value]
        if not any(c for _, c in items):
            return value, False
        return type(value)(v for v, _ in items), True
    if isinstance(value, dict):
        items = {k: _clean(v) for k, v in value.items()}
        if not any(c for _, c in items.values()):
            return value, False
        return {k: v for k, (v, _) in items.items()}, True
    return value, False


def unlink_figure(fig: go.Figure) -> go.Figure:
    """`fig` without live links from its strings: a cleaned copy, or `fig` itself when it
    carries no `<a>` tag. The check reads the figure's own property dicts (plotly's
    `BaseFigure._data` / `_layout`, no deep copy), so the common case costs one pass over
    its string arrays."""
    data = getattr(fig, "_data", None)
    layout = getattr(fig, "_layout", None)
    if data is None or layout is None:   # another plotly: the public, copying accessors
        data = [trace.to_plotly_json() for trace in fig.data]
        layout = fig.layout.to_plotly_json()
    new_data, data_changed = _clean(list(data))
    new_layout, layout_changed = _clean(dict(layout))
    if not (data_changed or layout_changed):
        return fig
    out = go.Figure(layout=new_layout)
    out.add_traces([type(trace)(cleaned) for trace, cleaned in zip(fig.data, new_data,
                                                                       strict=True)])
    return out
