"""Zoom and pan of a plotly chart reported to the server: `st.plotly_chart` reports box and
lasso selections but not the axis ranges a user zooms or pans to, so a raster drawn for one
window (views/landscape_raster.py) could not be drawn again for the next.

`axis_window(chart_key, key=...)` mounts a small `st.components.v2` component without a shadow
root and without anything to show: its script finds the page's plotly graph (the
`.js-plotly-plot` inside the chart's `st-key-<chart_key>` container), listens to
`plotly_relayout` and sends the new axis ranges as a trigger value (`{"x": [lo, hi],
"y": [lo, hi], "dragmode": tool}`: the tool in use, so the redrawn chart keeps it), or
`{"reset": true}` when the axes return to autorange (double-click, the "Autoscale" button). A relayout that changes no axis (drag mode, a selection, a resize) sends
nothing. Mount it before the chart: the window it reports is read in the same script run that
draws the chart for it.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

__all__ = ["axis_window"]

_JS = r"""
export default function (component) {
  const { data, setTriggerValue } = component;
  const selector = `.st-key-${data.chart} .js-plotly-plot`;
  let gd = null;
  const onRelayout = (ev) => {
    const keys = Object.keys(ev || {}).filter((k) => /^[xy]axis\.(range|autorange)/.test(k));
    if (!keys.length || !gd || !gd.layout) return;
    if (keys.some((k) => k.endsWith("autorange") && ev[k])) {
      setTriggerValue("window", { reset: true });
      return;
    }
    const xr = gd.layout.xaxis.range, yr = gd.layout.yaxis.range;
    setTriggerValue("window", { x: [Number(xr[0]), Number(xr[1])],
                                y: [Number(yr[0]), Number(yr[1])],
                                dragmode: (gd._fullLayout || {}).dragmode || null });
  };
  const detach = () => { if (gd && gd.removeListener) gd.removeListener("plotly_relayout", onRelayout); };
  const attach = () => {
    const el = document.querySelector(selector);
    if (el && el !== gd && el.on) { detach(); gd = el; gd.on("plotly_relayout", onRelayout); }
  };
  attach();
  // the chart mounts after this component and may be replaced by a rerun
  const timer = setInterval(attach, 300);
  return () => { clearInterval(timer); detach(); };
}
"""

_mount = st.components.v2.component("cart_chart_axis_window", js=_JS, isolate_styles=False)
_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _ignore() -> None:
    """The trigger value is read from the mount's result; no callback work."""


def axis_window(chart_key: str, *, key: str) -> dict[str, Any] | None:
    """The axis window the user just zoomed or panned the chart `chart_key` to (`{"x": [lo,
    hi], "y": [lo, hi], "dragmode": tool}` in data units), `{"reset": True}` after a reset to autorange, or None
    when this run was not started by either."""
    if not _KEY.match(chart_key):
        raise ValueError(f"chart key {chart_key!r}: use letters, digits, '-' and '_' only "
                         "(it names a CSS class)")
    got = _mount(key=key, data={"chart": chart_key}, on_window_change=_ignore)
    value = got.get("window") if got is not None else None
    return value if isinstance(value, dict) else None
