"""Gating many FCS files: N files of E events with a 10-gate Gating-ML 2.0 tree, serial vs
parallel processes (data_loaders.formats.gating.gate_files), wall time and peak memory.

    .venv/bin/python benchmarks/gating.py --out /tmp/gating_bench [--files 100] [--events 100000]

Files are written once into --out (kept between runs; nothing is written in the project).
Peak memory is the largest resident set of this process plus its worker processes (and the
forkserver they come from), sampled every 250 ms (listing child processes scans /proc, which
costs CPU the workers would miss at a shorter interval); the load average printed with each run says
how much else the machine was doing. No cache is used, so every run gates every file; a last run shows the cache hit.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from array import array
from pathlib import Path

import numpy as np
import psutil

from data_loaders.formats.gating import GateJob, gate_files

CHANNELS = ["FSC-A", "SSC-A", "FITC-A", "PE-A", "PerCP-Cy5-5-A", "PE-Cy7-A", "APC-A",
            "APC-H7-A", "BV421-A", "BV510-A", "Time"]
MARKERS = ["", "", "CD3", "CD7", "CD4", "CD56", "CAR", "CD8", "CD19", "CD14", ""]
NS = ('xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating" '
      'xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations" '
      'xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"')


def write_files(out: Path, n_files: int, n_events: int) -> list[Path]:
    import flowio

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        p = out / f"S{i:04d}.fcs"
        paths.append(p)
        if p.is_file():
            continue
        rng = np.random.default_rng(i)
        pos = rng.random((n_events, 8)) < 0.4
        fluor = np.where(pos, np.exp(rng.normal(np.log(5000), 0.4, (n_events, 8))),
                         rng.normal(0, 60, (n_events, 8)))
        scatter = np.exp(rng.normal(np.log([60e3, 20e3]), [0.2, 0.5], (n_events, 2)))
        t = np.sort(rng.uniform(0, 300, n_events))[:, None]
        ev = np.hstack([scatter, fluor, t]).astype("<f4")
        with p.open("wb") as fh:
            flowio.create_fcs(fh, array("f", ev.tobytes()), CHANNELS,
                              opt_channel_names=MARKERS)
    return paths


def _dim(name: str, lo: float | None = None, hi: float | None = None, xf: str = "") -> str:
    attrs = (f' gating:min="{lo}"' if lo is not None else "") + \
        (f' gating:max="{hi}"' if hi is not None else "") + \
        (f' gating:transformation-ref="{xf}"' if xf else "")
    return (f'<gating:dimension gating:compensation-ref="uncompensated"{attrs}>'
            f'<data-type:fcs-dimension data-type:name="{name}"/></gating:dimension>')


def write_gates(path: Path) -> Path:
    """Ten gates, three levels: a scatter polygon, then logicle-scale rectangles and ranges."""
    lg = "Logicle"
    pos, neg = 0.55, 0.55          # logicle(T=262144, W=0.5, M=4.5) of about 2,000
    verts = "".join(f'<gating:vertex><gating:coordinate data-type:value="{x}"/>'
                    f'<gating:coordinate data-type:value="{y}"/></gating:vertex>'
                    for x, y in [(30e3, 3e3), (120e3, 3e3), (120e3, 60e3), (30e3, 60e3)])

    def rect(gid: str, parent: str, *dims: str) -> str:
        return (f'<gating:RectangleGate gating:id="{gid}" gating:parent_id="{parent}">'
                + "".join(dims) + "</gating:RectangleGate>")

    gates = [
        f'<gating:PolygonGate gating:id="Cells">{_dim("FSC-A")}{_dim("SSC-A")}{verts}'
        '</gating:PolygonGate>',
        rect("CD3pos", "Cells", _dim("FITC-A", lo=pos, xf=lg)),
        rect("CD3neg", "Cells", _dim("FITC-A", hi=neg, xf=lg)),
        rect("CARpos", "CD3pos", _dim("APC-A", lo=pos, xf=lg)),
        rect("CD7neg", "CD3pos", _dim("PE-A", hi=neg, xf=lg)),
        rect("CD4pos", "CD3pos", _dim("PerCP-Cy5-5-A", lo=pos, xf=lg),
             _dim("APC-H7-A", hi=neg, xf=lg)),
        rect("CD8pos", "CD3pos", _dim("PerCP-Cy5-5-A", hi=neg, xf=lg),
             _dim("APC-H7-A", lo=pos, xf=lg)),
        rect("NK", "CD3neg", _dim("PE-Cy7-A", lo=pos, xf=lg)),
        rect("B", "CD3neg", _dim("BV421-A", lo=pos, xf=lg)),
        rect("Mono", "CD3neg", _dim("BV510-A", lo=pos, xf=lg), _dim("BV421-A", hi=neg, xf=lg)),
    ]
    xform = (f'<transforms:transformation transforms:id="{lg}"><transforms:logicle '
             'transforms:T="262144" transforms:W="0.5" transforms:M="4.5" transforms:A="0"/>'
             '</transforms:transformation>')
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<gating:Gating-ML {NS}>{xform}'
                    + "".join(gates) + "</gating:Gating-ML>\n", encoding="utf-8")
    return path


class PeakMemory:
    """Largest RSS of this process plus its children, sampled in a thread."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                rss = me.memory_info().rss + sum(c.memory_info().rss for c in
                                                 me.children(recursive=True))
            except psutil.Error:
                rss = 0
            self.peak = max(self.peak, rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/gating_bench")
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    out = Path(args.out)
    t0 = time.perf_counter()
    files = write_files(out / f"fcs_{args.events}", args.files, args.events)
    gml = write_gates(out / "tree.xml")
    print(f"{args.files} files x {args.events:,} events ready in "
          f"{time.perf_counter() - t0:.1f} s ({sum(p.stat().st_size for p in files) / 1e6:.0f} MB)")
    jobs = [GateJob(str(p), str(gml)) for p in files]
    for p in files:                       # into the page cache, so no run pays the disk
        p.read_bytes()
    from data_loaders.formats.gating import gate_file

    first = gate_file(jobs[0])    # imports FlowKit here, not inside the serial timing
    print("first file: " + ", ".join(f"{p.path} {p.count:,}" for p in first.populations))
    base = psutil.Process().memory_info().rss
    counts = None
    for w in args.workers:
        with PeakMemory() as mem:
            t = time.perf_counter()
            res = gate_files(jobs, workers=w)
            dt = time.perf_counter() - t
        bad = [r.error for r in res if r.error]
        assert not bad, bad[:3]
        got = [[p.count for p in r.populations] for r in res]
        assert counts is None or got == counts, "serial and parallel counts differ"
        counts = got
        n_gates = len(res[0].populations)
        print(f"workers={w}: {dt:.1f} s ({dt / len(jobs) * 1000:.0f} ms/file, {n_gates} gates), "
              f"peak RSS {mem.peak / 2**20:.0f} MiB (this process before: {base / 2**20:.0f} "
              f"MiB); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    cache = out / "cache"
    gate_files(jobs, workers=max(args.workers), cache_dir=cache)
    t = time.perf_counter()
    hit = gate_files(jobs, cache_dir=cache)
    print(f"cache hit ({len(jobs)} files, hashes remembered by name, size and mtime): "
          f"{time.perf_counter() - t:.2f} s, {sum(r.cached for r in hit)} of {len(jobs)} cached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
