"""A seeded synthetic single-cell study of any size (millions of cells), written chunk by chunk
so generating it never holds the matrix: for the scale tests and benchmarks/sc_scale.py, never
committed.

The .h5ad is shaped as a processed scanpy object: X log-normalised (CSR, `nnz` detected genes
per cell), obs patient / sample / timepoint labels / cell_type, obsm X_umap with one blob per
cell type (so a raster shows structure and a lasso holds one population), and per cell type a
block of marker genes expressed higher in its cells (so marker tests have an answer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_many_cells", "CELL_TYPES"]

CELL_TYPES = ("CD4 T", "CD8 T", "CAR-T CD8", "NK", "B", "Monocyte", "DC", "Treg",
              "gd T", "Plasma", "Neutrophil", "Erythroid")
_LABELS = ("Baseline", "D14", "Day 28", "M3")
_MARKERS_PER_TYPE = 10


def write_many_cells(folder: Path, *, cells: int, genes: int = 2000, nnz: int = 20,
                     patients: int = 200, seed: int = 0, chunk: int = 250_000) -> Path:
    """Write `<folder>/single_cell.h5ad` (and a study.toml naming the study) and return the
    file. Cells are in patient order within chunks, as a concatenation of samples would be."""
    import h5py
    import pandas as pd
    from anndata.io import write_elem

    if nnz >= genes:
        raise ValueError("nnz must be below genes")
    folder.mkdir(parents=True, exist_ok=True)
    # a large generated file is expected here: the one-file size limit is raised for it
    (folder / "study.toml").write_text(f'[study]\nid = "SYN-{cells}"\ntitle = '
                                       f'"Synthetic study, {cells:,} cells"\n\n'
                                       '[limits]\nmax_file_mb = 65536\n')
    rng = np.random.default_rng(seed)
    n_types = len(CELL_TYPES)
    ctype = rng.integers(0, n_types, cells).astype(np.int16)
    patient = np.sort(rng.integers(0, patients, cells)).astype(np.int32)
    visit = rng.integers(0, len(_LABELS), cells).astype(np.int8)
    pids = [f"P{p:03d}" for p in range(patients)]
    sample_codes = patient.astype(np.int64) * len(_LABELS) + visit
    samples = [f"{p}_{t}" for p in pids for t in _LABELS]
    obs = pd.DataFrame({
        "patient": pd.Categorical.from_codes(patient, pids),
        "sample": pd.Categorical.from_codes(sample_codes, samples),
        "timepoint": pd.Categorical.from_codes(visit, list(_LABELS)),
        "cell_type": pd.Categorical.from_codes(ctype, list(CELL_TYPES))},
        index=pd.Index(np.char.add("c", np.arange(cells).astype(str)).astype(object)))
    angle = 2 * np.pi * np.arange(n_types) / n_types
    centre = np.column_stack([10 * np.cos(angle), 10 * np.sin(angle)]).astype(np.float32)
    umap = centre[ctype] + rng.standard_normal((cells, 2), dtype=np.float32) * 1.3
    names = [f"G{j:04d}" for j in range(genes)]
    path = folder / "single_cell.h5ad"
    tmp = path.with_suffix(".part")
    n_mark = min(3, nnz)
    # marker genes take the first block of columns (10 per type); the other detected genes
    # are drawn one per stride bin from the rest, so no column repeats within a cell
    first = min(n_types * _MARKERS_PER_TYPE, genes - (nnz - n_mark))
    per_type = max(first // n_types, 1)
    with h5py.File(tmp, "w") as f:
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        write_elem(f, "obs", obs)
        write_elem(f, "var", pd.DataFrame(index=names))
        x = f.create_group("X")
        x.attrs["encoding-type"], x.attrs["encoding-version"] = "csr_matrix", "0.1.0"
        x.attrs["shape"] = np.array([cells, genes])
        data = x.create_dataset("data", shape=(cells * nnz,), dtype="f4", chunks=(1 << 20,))
        idx = x.create_dataset("indices", shape=(cells * nnz,), dtype="i4", chunks=(1 << 20,))
        x.create_dataset("indptr", data=np.arange(cells + 1, dtype=np.int64) * nnz)
        rest = nnz - n_mark
        stride = max((genes - first) // max(rest, 1), 1)
        for lo in range(0, cells, chunk):
            hi = min(lo + chunk, cells)
            m = hi - lo
            base = rng.integers(0, per_type, (m, 1))
            mk = ctype[lo:hi, None].astype(np.int64) * per_type + \
                (base + np.arange(n_mark) * max(per_type // n_mark, 1)) % per_type
            other = first + rng.integers(0, stride, (m, rest)) + np.arange(rest) * stride
            cols = np.concatenate([np.sort(mk, axis=1), other], axis=1)
            vals = rng.uniform(0.3, 3.0, (m, nnz)).astype(np.float32)
            vals[:, :n_mark] += 1.5
            data[lo * nnz:hi * nnz] = vals.ravel()
            idx[lo * nnz:hi * nnz] = cols.ravel().astype(np.int32)
        write_elem(f, "obsm", {"X_umap": umap})
        for key in ("layers", "obsp", "varm", "varp", "uns"):
            write_elem(f, key, {})
    tmp.replace(path)
    return path
