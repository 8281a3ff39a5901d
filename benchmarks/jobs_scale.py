"""Long work on the jobs cluster, 1 worker vs 2: pseudobulk DE over 10M cells and gating of
500 FCS files. Ratios are measured side by side in one run.

    .venv/bin/python benchmarks/jobs_scale.py --out /tmp/jobs_bench [--cells 10000000]
        [--files 500] [--workers 1 2] [--only pseudobulk|gating]

Pseudobulk: a generated count matrix of --cells cells x --genes genes (sparse, about
--nnz non-zero counts per cell, 40 samples of 20 "responders" and 20 "non-responders" with
2% of genes doubled in the first group) is written once into --out as CSR chunks of
--chunk cells (the layout of a chunked single-cell store). The job (`jobs.submit`) sums the
raw counts per sample, one chunk per task on the workers (`jobs.parallel.parallel_map`,
`analysis.pseudobulk.sum_by_group`), then filters genes (edgeR filterByExpr rule) and fits
DESeq2 (pydeseq2) on the 40 x genes pseudobulk matrix in one task. The summation is what more
workers speed up; the DESeq2 fit is one task and is timed apart.

Gating: --files FCS files of --events events (benchmarks/gating.py writes them: 11 channels,
a 10-gate Gating-ML tree with logicle scales) gated one file per task on the cluster
(`gate_files(..., executor=jobs.parallel.executor())`), no cache.

Each worker count gets a fresh LocalCluster (processes, one thread each); its start-up and a
warm-up task on every worker (imports) are not timed. The load average printed with each run
says how much else the shared machine was doing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
N_SAMPLES = 40


def _gating_helpers():  # noqa: ANN202 - a module loaded by file
    spec = importlib.util.spec_from_file_location("bench_gating", ROOT / "benchmarks" /
                                                  "gating.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


# ---- data -------------------------------------------------------------------------------------
def write_counts(out: Path, *, cells: int, genes: int, nnz: int, chunk: int) -> list[Path]:
    """CSR chunks (data uint16, indices uint16, indptr int64, sample code per cell)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    base = np.random.default_rng(0)
    p = base.lognormal(0, 1.2, genes)
    p_a = p.copy()
    p_a[: genes // 50] *= 2.0                       # 2% of genes up in group a
    cdf, cdf_a = np.cumsum(p / p.sum()), np.cumsum(p_a / p_a.sum())
    for k, lo in enumerate(range(0, cells, chunk)):
        path = out / f"chunk{k:04d}.npz"
        paths.append(path)
        if path.is_file():
            continue
        n = min(chunk, cells - lo)
        rng = np.random.default_rng(1000 + k)
        sample = rng.integers(0, N_SAMPLES, n)
        per_cell = rng.poisson(nnz, n)
        indptr = np.concatenate([[0], np.cumsum(per_cell)]).astype(np.int64)
        in_a = np.repeat(sample < N_SAMPLES // 2, per_cell)
        u = rng.random(indptr[-1])
        idx = np.where(in_a, np.searchsorted(cdf_a, u), np.searchsorted(cdf, u))
        idx = np.minimum(idx, genes - 1).astype(np.uint16)
        data = (1 + rng.geometric(0.6, indptr[-1]) - 1).astype(np.uint16)
        np.savez(path, data=data, indices=idx, indptr=indptr, sample=sample.astype(np.int16),
                 shape=np.asarray([n, genes]))
    return paths


def sum_chunk(path: str) -> np.ndarray:
    """Raw counts of one chunk summed per sample (samples x genes, int64)."""
    import scipy.sparse as sp

    from analysis.pseudobulk import sum_by_group

    z = np.load(path)
    n, g = (int(v) for v in z["shape"])
    m = sp.csr_matrix((z["data"].astype(np.float32), z["indices"].astype(np.int32),
                       z["indptr"]), shape=(n, g))
    # duplicate gene indices in a row are summed, as a count matrix would hold them
    return sum_by_group(m, codes=z["sample"].astype(np.int64), n_groups=N_SAMPLES)


def pseudobulk_sums(paths: list[str]) -> np.ndarray:
    """The job: every chunk summed on the workers, added up."""
    from jobs.parallel import parallel_map

    return np.sum(parallel_map(sum_chunk, paths, label="chunks"), axis=0)


def deseq2_fit(counts: np.ndarray) -> dict:
    """filterByExpr, then DESeq2 responders vs non-responders."""
    from analysis.pseudobulk import deseq2_test, filter_by_expr

    cond = ["a"] * (N_SAMPLES // 2) + ["b"] * (N_SAMPLES // 2)
    keep = filter_by_expr(counts, group=cond)
    genes = [f"g{j}" for j in np.flatnonzero(keep)]
    res = deseq2_test(counts[:, keep], genes=genes, subjects=[f"p{i}" for i in
                                                               range(N_SAMPLES)],
                      condition=cond)
    return {"tested": int(keep.sum()), "q05": int((res.get_column("q_value") < 0.05).sum())}


def _cpu() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


def workers_cpu(c) -> float:  # noqa: ANN001 - a distributed.Client
    """CPU seconds used so far by the cluster's worker processes (user + system)."""
    return sum(c.run(_cpu).values())


def _warm(fn_name: str) -> int:
    import importlib

    importlib.import_module(fn_name)
    return os.getpid()


# ---- runs -------------------------------------------------------------------------------------
def _cluster(n: int):  # noqa: ANN202 - a distributed.Client
    from jobs.cluster import client, shutdown
    from jobs.settings import JobSettings

    shutdown()
    c = client(JobSettings(workers=n, memory_limit="6GiB"))
    c.wait_for_workers(n, timeout=120)
    return c


def run_pseudobulk(paths: list[Path], workers: list[int], out: Path) -> None:
    import jobs

    strs = [str(p) for p in paths]
    reference = None
    for n in workers:
        c = _cluster(n)
        c.run(_warm, "analysis.pseudobulk")
        cpu0, t = workers_cpu(c), time.perf_counter()
        h = jobs.submit(pseudobulk_sums, strs, study=out, key_parts=("bench",), rerun=True)
        counts = h.result()
        t_sum = time.perf_counter() - t
        cpu = workers_cpu(c) - cpu0
        assert reference is None or np.array_equal(counts, reference), "sums differ"
        reference = counts
        print(f"pseudobulk sums, workers={n}: {t_sum:.1f} s wall, {cpu:.1f} s CPU of the "
              f"workers, for {len(paths)} chunks "
              f"({counts.sum():,} counts, {counts.shape[0]} samples x {counts.shape[1]} "
              f"genes); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
              flush=True)
    t = time.perf_counter()
    got = jobs.submit(deseq2_fit, reference, study=out, rerun=True).result()
    print(f"DESeq2 on the pseudobulk matrix (one task): {time.perf_counter() - t:.1f} s, "
          f"{got['tested']} genes tested, {got['q05']} at q < 0.05 "
          f"(planted: {reference.shape[1] // 50})", flush=True)


def run_gating(n_files: int, n_events: int, workers: list[int], out: Path) -> None:
    from data_loaders.formats.gating import GateJob, gate_files
    from jobs.parallel import executor
    from jobs.settings import JobSettings

    g = _gating_helpers()
    t = time.perf_counter()
    files = g.write_files(out / f"fcs_{n_events}", n_files, n_events)
    gml = g.write_gates(out / "tree.xml")
    print(f"{n_files} FCS files x {n_events:,} events ready in {time.perf_counter() - t:.1f} s "
          f"({sum(p.stat().st_size for p in files) / 1e6:.0f} MB)", flush=True)
    todo = [GateJob(str(p), str(gml), label=p.name) for p in files]
    for p in files:
        p.read_bytes()                  # page cache: no run pays the disk
    reference = None
    for n in workers:
        c = _cluster(n)
        c.run(_warm, "flowkit")
        with executor(JobSettings(workers=n)) as pool:
            gate_files(todo[:n], executor=pool)          # FlowKit's first use on each worker
            cpu0, t = workers_cpu(c), time.perf_counter()
            res = gate_files(todo, executor=pool)
            dt = time.perf_counter() - t
            cpu = workers_cpu(c) - cpu0
        bad = [r.error for r in res if r.error]
        assert not bad, bad[:3]
        counts = [[p.count for p in r.populations] for r in res]
        assert reference is None or counts == reference, "counts differ between runs"
        reference = counts
        print(f"gating, workers={n}: {dt:.1f} s wall, {cpu:.1f} s CPU of the workers, for "
              f"{len(todo)} files "
              f"({dt / len(todo) * 1000:.0f} ms/file); load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/jobs_bench"))
    ap.add_argument("--cells", type=int, default=10_000_000)
    ap.add_argument("--genes", type=int, default=2000)
    ap.add_argument("--nnz", type=int, default=40, help="non-zero counts per cell (mean)")
    ap.add_argument("--chunk", type=int, default=500_000, help="cells per chunk (task)")
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--only", choices=["pseudobulk", "gating"])
    args = ap.parse_args(argv)
    os.environ.pop("CART_JOBS", None)
    os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
    args.out.mkdir(parents=True, exist_ok=True)
    from jobs.cluster import shutdown

    try:
        if args.only in (None, "pseudobulk"):
            t = time.perf_counter()
            paths = write_counts(args.out / f"counts_{args.cells}_{args.genes}",
                                 cells=args.cells, genes=args.genes, nnz=args.nnz,
                                 chunk=args.chunk)
            size = sum(p.stat().st_size for p in paths) / 1e9
            print(f"{args.cells:,} cells x {args.genes:,} genes (about {args.nnz} non-zero "
                  f"per cell) in {len(paths)} chunks ready in {time.perf_counter() - t:.1f} s "
                  f"({size:.1f} GB)", flush=True)
            run_pseudobulk(paths, args.workers, args.out)
        if args.only in (None, "gating"):
            run_gating(args.files, args.events, args.workers, args.out)
    finally:
        shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
