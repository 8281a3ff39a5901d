"""Cost of taking live links out of a figure before it is drawn (components/safe.py
`unlink_figure`, called by render.show_figure on every run and by every figure export).

    python benchmarks/unlink_figure.py [--points 300000] [--repeat 5]

An embedding-shaped figure: 8 Scattergl traces (one per cell type) with hover text and
customdata per point. "clean" = no link anywhere (the figure comes back unchanged, the common
case); "one link" = one hover text carries `<a href>` (the figure is copied and cleaned).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import plotly.graph_objects as go
from _timing import median_time

from components.safe import unlink_figure


def figure(points: int, *, link: bool) -> go.Figure:
    rng = np.random.default_rng(0)
    fig = go.Figure()
    per = points // 8
    for k in range(8):
        hover = np.array([f"SAA-00{i % 5} day {i % 30}" for i in range(per)], dtype=object)
        if link and k == 3:
            hover[per // 2] = '<a href="https://example.org">SAA-009</a>'
        fig.add_trace(go.Scattergl(x=rng.random(per), y=rng.random(per), mode="markers",
                                   name=f"type {k}", hovertext=hover,
                                   customdata=np.arange(per).reshape(-1, 1)))
    return fig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=300_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    print(f"{args.points:,} points, median of {args.repeat}, load average "
          f"{os.getloadavg()[0]:.1f}")
    for label, link in (("clean (unchanged)", False), ("one link (copied)", True)):
        fig = figure(args.points, link=link)
        seconds, out = median_time(lambda f=fig: unlink_figure(f), repeat=args.repeat)
        print(f"  {label:<20} {seconds * 1000:8.1f} ms   same object: {out is fig}")


if __name__ == "__main__":
    main()
