"""10x Genomics Cell Ranger gene-expression output -> single-cell AnnData.

Reads `filtered_feature_bc_matrix.h5` (HDF5, Cell Ranger 3+ layout `matrix/{data, indices,
indptr, shape, barcodes, features/...}`, and the 2.x per-genome layout) with h5py, or the
`filtered_feature_bc_matrix/` folder (`matrix.mtx[.gz]`, `features.tsv[.gz]` or `genes.tsv`,
`barcodes.tsv[.gz]`) with scipy.io.mmread. Only "Gene Expression" features are kept.

The AnnData holds raw counts in `layers["counts"]` and log-normalised values in X:
log1p(counts / total counts of the cell * 10,000), the usual library-size normalisation
(scanpy `normalize_total(target_sum=1e4)` + `log1p`). obs carries sample_id (option `sample_id`
for one sample, or `barcode_suffix` mapping the "-1" suffix of a barcode to a sample_id as after
`cellranger aggr`) and the sample's subject_id, day, timepoint and tissue from the samples table.

`python cli.py import --from 10x DIR --out STUDY --option sample_id=S1` writes single_cell.h5ad;
a `[[sources]] format = "10x"` entry in study.toml is converted when the study loads and cached
in the study's `.cache/` folder until the files, options or samples change.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl
from scipy import sparse

from data_loaders.errors import StudyError, ValidationReport

__all__ = ["TenxCounts", "read_10x_counts", "to_anndata", "write_single_cell",
           "single_cell_from_sources", "TARGET_SUM"]

TARGET_SUM = 1e4
_OPTIONS = {"sample_id", "barcode_suffix"}


@dataclass(frozen=True)
class TenxCounts:
    """Counts as cells x features (CSR, int32) with the feature and barcode annotation."""

    counts: sparse.csr_matrix
    barcodes: list[str]
    gene_ids: list[str]
    gene_names: list[str]
    feature_types: list[str]


def read_10x_counts(path: Path, *, name: str | None = None) -> TenxCounts:
    """Read a Cell Ranger .h5 file or filtered_feature_bc_matrix folder. Raises `StudyError`
    naming the file when it is missing parts, truncated or inconsistent."""
    name = name or path.name
    if path.is_dir():
        return _read_mtx_folder(path, name)
    return _read_h5(path, name)


def _text(values: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _read_h5(path: Path, name: str) -> TenxCounts:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "matrix" in f:
                g = f["matrix"]
                feats = g["features"]
                ids, names = _text(feats["id"][:]), _text(feats["name"][:])
                types = _text(feats["feature_type"][:]) if "feature_type" in feats else \
                    ["Gene Expression"] * len(ids)
            else:  # Cell Ranger 2.x: one group per genome
                genomes = list(f.keys())
                if not genomes:
                    raise StudyError("is an HDF5 file without a 10x matrix group", file=name,
                                     fix="give Cell Ranger's filtered_feature_bc_matrix.h5")
                g = f[genomes[0]]
                ids, names = _text(g["genes"][:]), _text(g["gene_names"][:])
                types = ["Gene Expression"] * len(ids)
            barcodes = _text(g["barcodes"][:])
            shape = tuple(int(x) for x in g["shape"][:])
            data, indices, indptr = g["data"][:], g["indices"][:], g["indptr"][:]
    except StudyError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise StudyError(f"could not be read as a 10x HDF5 matrix: {_short(exc)}", file=name,
                         fix="the file may be truncated or not Cell Ranger output; copy it "
                         "again") from None
    try:
        # Stored column-compressed by barcode: features x barcodes.
        mat = sparse.csc_matrix((data, indices, indptr), shape=shape)
    except ValueError as exc:
        raise StudyError(f"has an inconsistent matrix: {_short(exc)}", file=name,
                         fix="the file is damaged; copy it again") from None
    return _checked(mat, barcodes, ids, names, types, name)


def _find(folder: Path, stems: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for suffix in (".gz", ""):
            p = folder / f"{stem}{suffix}"
            if p.is_file():
                return p
    return None


def _open(p: Path) -> BinaryIO:
    return gzip.open(p, "rb") if p.suffix == ".gz" else p.open("rb")


def _read_mtx_folder(folder: Path, name: str) -> TenxCounts:
    from scipy.io import mmread

    mtx = _find(folder, ("matrix.mtx",))
    feats = _find(folder, ("features.tsv", "genes.tsv"))
    bcs = _find(folder, ("barcodes.tsv",))
    missing = [n for n, p in (("matrix.mtx[.gz]", mtx), ("features.tsv[.gz]", feats),
                              ("barcodes.tsv[.gz]", bcs)) if p is None]
    if missing:
        raise StudyError(f"is not a 10x matrix folder: {', '.join(missing)} missing", file=name,
                         fix="give Cell Ranger's filtered_feature_bc_matrix folder")
    assert mtx is not None and feats is not None and bcs is not None
    try:
        with _open(mtx) as fh:
            mat = sparse.csc_matrix(mmread(fh))
    except (OSError, EOFError, ValueError, IndexError) as exc:
        raise StudyError(f"could not be read as a Matrix Market file: {_short(exc)}",
                         file=f"{name}/{mtx.name}", fix="the file looks truncated or damaged; "
                         "copy it again") from None
    try:
        with _open(feats) as fh:
            rows = [line.decode("utf-8").rstrip("\r\n").split("\t") for line in fh if line.strip()]
        with _open(bcs) as fh:
            barcodes = [line.decode("utf-8").strip() for line in fh if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise StudyError(f"feature or barcode list could not be read: {_short(exc)}", file=name,
                         fix="copy the folder again") from None
    if any(len(r) < 2 for r in rows):
        raise StudyError("features.tsv needs at least two tab-separated columns (id, symbol)",
                         file=f"{name}/{feats.name}", fix="give Cell Ranger's features.tsv.gz")
    ids, names = [r[0] for r in rows], [r[1] for r in rows]
    types = [r[2] if len(r) > 2 else "Gene Expression" for r in rows]
    return _checked(mat, barcodes, ids, names, types, name)


def _checked(mat: sparse.csc_matrix, barcodes: list[str], ids: list[str], names: list[str],
             types: list[str], name: str) -> TenxCounts:
    n_feat, n_bc = mat.shape
    if n_feat != len(ids) or n_bc != len(barcodes):
        raise StudyError(f"matrix is {n_feat} features x {n_bc} barcodes but the lists have "
                         f"{len(ids)} features and {len(barcodes)} barcodes", file=name,
                         fix="the files come from different runs or one is truncated")
    data = mat.data
    if data.size and (np.any(data < 0) or not np.all(np.isfinite(data))
                      or np.any(data != np.round(data))):
        raise StudyError("holds values that are not non-negative whole counts", file=name,
                         fix="give Cell Ranger's raw UMI counts, not normalised values")
    counts = sparse.csr_matrix(mat.T, dtype=np.int32)
    return TenxCounts(counts, barcodes, ids, names, types)


# --------------------------------------------------------------------------------------------
# AnnData
# --------------------------------------------------------------------------------------------
def _obs_samples(barcodes: list[str], options: dict[str, Any], name: str) -> list[str | None]:
    if options.get("sample_id"):
        return [str(options["sample_id"])] * len(barcodes)
    mapping = options.get("barcode_suffix")
    if mapping:
        m = {str(k): str(v) for k, v in dict(mapping).items()}
        return [m.get(b.rsplit("-", 1)[-1]) if "-" in b else None for b in barcodes]
    raise StudyError("does not say which sample its cells come from", file=name,
                     fix="give options.sample_id = \"S1\" (one sample) or options.barcode_suffix "
                     "= { \"1\" = \"S1\", \"2\" = \"S2\" } (aggregated runs)")


def to_anndata(path: Path, options: dict[str, Any], samples: pl.DataFrame | None,
               report: ValidationReport, *, label: str | None = None) -> Any:
    """10x counts -> AnnData (X log-normalised, layers["counts"] raw, obs sample metadata)."""
    import anndata as ad
    import pandas as pd

    name = label or path.name
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        report.add("warning", "single_cell", name,
                   f"unknown 10x option(s): {', '.join(unknown)}",
                   fix=f"the 10x reader takes: {', '.join(sorted(_OPTIONS))}")
    tx = read_10x_counts(path, name=name)
    sample_ids = _obs_samples(tx.barcodes, options, name)
    gex = np.array([t == "Gene Expression" for t in tx.feature_types])
    if not gex.all():
        other = sorted(set(t for t, g in zip(tx.feature_types, gex, strict=True) if not g))
        report.add("note", "single_cell", name,
                   f"{int((~gex).sum())} feature(s) of type {', '.join(other)} left out (gene "
                   "expression only)")
    keep_cells = np.array([s is not None for s in sample_ids])
    if not keep_cells.all():
        report.add("warning", "single_cell", name,
                   f"{int((~keep_cells).sum()):,} cell(s) whose barcode suffix is not in "
                   "options.barcode_suffix left out", fix="add the suffix to the mapping")
    counts = tx.counts[keep_cells][:, gex]
    if counts.shape[0] == 0:
        raise StudyError("has no cells left to load", file=name,
                         fix="check options.barcode_suffix")
    totals = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
    scale = np.divide(TARGET_SUM, totals, out=np.zeros_like(totals), where=totals > 0)
    x = sparse.diags(scale) @ counts.astype(np.float64)
    x = sparse.csr_matrix(x)
    x.data = np.log1p(x.data)
    barcodes = [b for b, k in zip(tx.barcodes, keep_cells, strict=True) if k]
    obs = pd.DataFrame({"barcode": barcodes,
                        "sample_id": [s for s in sample_ids if s is not None]},
                       index=pd.Index(barcodes, name=None))
    obs["n_counts"] = totals.astype(np.int64)
    obs["n_genes"] = np.diff(counts.indptr).astype(np.int64)
    obs = _with_sample_metadata(obs, samples, report, name)
    var = pd.DataFrame({"gene_ids": [i for i, g in zip(tx.gene_ids, gex, strict=True) if g],
                        "feature_types": "Gene Expression"},
                       index=[n for n, g in zip(tx.gene_names, gex, strict=True) if g])
    adata = ad.AnnData(X=x.astype(np.float32), obs=obs, var=var,
                       layers={"counts": counts.astype(np.int32)})
    adata.var_names_make_unique()
    adata.obs_names_make_unique()
    adata.uns["normalisation"] = f"log1p(counts / total counts per cell * {TARGET_SUM:g})"
    adata.uns["source"] = {"format": "10x", "file": name}
    report.add("note", "single_cell", name,
               f"{adata.n_obs:,} cells x {adata.n_vars:,} genes read from 10x output; X = "
               f"log1p(counts / total * {TARGET_SUM:g}), raw counts in layers['counts']")
    return adata


def _with_sample_metadata(obs: Any, samples: pl.DataFrame | None, report: ValidationReport,
                          name: str) -> Any:
    wanted = sorted(set(obs["sample_id"]))
    known = samples.filter(pl.col("sample_id").is_in(wanted)) if samples is not None and \
        samples.height else None
    found = set(known.get_column("sample_id").to_list()) if known is not None else set()
    missing = [s for s in wanted if s not in found]
    if missing:
        report.add("error", "single_cell", name,
                   f"sample_id(s) {', '.join(missing[:8])} not in the samples table: the cells "
                   "have no subject_id", column="obs.sample_id",
                   fix="add the sample to samples (sample_id, subject_id, day) first")
    cols = [c for c in ("subject_id", "day", "timepoint", "tissue")
            if known is not None and c in known.columns]
    if known is None or not cols:
        return obs
    meta = known.select("sample_id", *cols).to_pandas().set_index("sample_id")
    out = obs.join(meta, on="sample_id")
    for c in cols:
        if c == "day":
            out[c] = out[c].astype("Int64")
        else:
            out[c] = out[c].astype("category")
    out["sample_id"] = out["sample_id"].astype("category")
    return out


def write_single_cell(path: Path, out: Path, options: dict[str, Any],
                      samples: pl.DataFrame | None, report: ValidationReport, *,
                      label: str | None = None) -> Path:
    """Convert 10x output to an .h5ad file at `out` (compressed); returns `out`."""
    adata = to_anndata(path, options, samples, report, label=label)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    adata.write_h5ad(tmp, compression="gzip")
    tmp.replace(out)
    return out


def single_cell_from_sources(root: Path, config: dict[str, Any], samples: pl.DataFrame | None,
                             report: ValidationReport) -> Path | None:
    """The first `[[sources]] format = "10x"` of study.toml as a cached .h5ad in root/.cache
    (rebuilt when the 10x files, the options or the samples table change), or None."""
    for source in config.get("sources", []) or []:
        if str(source.get("format", "")).lower() != "10x":
            continue
        rel = str(source.get("path", ""))
        path = root / rel
        if not rel or not path.exists() or not path.resolve().is_relative_to(root.resolve()):
            report.add("error", "single_cell", rel or "study.toml",
                       "source path for format '10x' does not exist inside the study folder",
                       fix="give the .h5 file or filtered_feature_bc_matrix folder in "
                       "[[sources]] path")
            return None
        options = dict(source.get("options", {}) or {})
        key = _cache_key(path, options, samples)
        cache = root / ".cache" / f"single_cell_10x_{key}.h5ad"
        if cache.is_file():
            report.add("note", "single_cell", rel, f"10x output converted to AnnData (cached "
                       f"in .cache/{cache.name})")
            return cache
        try:
            write_single_cell(path, cache, options, samples, report, label=rel)
        except StudyError as err:
            report.add_error(err, table="single_cell", file=rel)
            return None
        except OSError as exc:
            report.add("error", "single_cell", rel, f"the converted AnnData could not be "
                       f"written to .cache/: {exc.strerror or exc}",
                       fix="make the study folder writable or convert once with: python cli.py "
                       "import --from 10x PATH --out STUDY")
            return None
        for old in cache.parent.glob("single_cell_10x_*.h5ad"):
            if old != cache:
                old.unlink(missing_ok=True)
        return cache
    return None


def _cache_key(path: Path, options: dict[str, Any], samples: pl.DataFrame | None) -> str:
    h = hashlib.blake2b(digest_size=10)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        st = p.stat()
        h.update(f"{p.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    if samples is not None and samples.height:
        h.update(samples.write_csv().encode())
    return h.hexdigest()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
