"""The on-disk cache of derived single-cell data: where it lives, content digests of input
files (and zarr folders), atomic writes, embedding coordinates and the gene-column store.

The cache is `<study>/.cache/` when writable, else a per-user folder; a file already present
in the study's own .cache (precomputed by `cli.py embed` on a volume the app may only read)
is used from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CacheLocation", "cache_location", "cache_file", "file_digest", "atomic_write",
           "save_array", "load_array", "GeneStore", "write_gene_store", "read_gene_store",
           "read_gene_column", "save_frames", "load_frames"]


@dataclass(frozen=True)
class CacheLocation:
    folder: Path
    in_study: bool
    note: str = ""


def cache_location(study_path: str | Path) -> CacheLocation:
    """`<study>/.cache` when writable, else a per-user cache folder (and a note saying so)."""
    root = Path(study_path).resolve()
    own = root / ".cache"
    try:
        own.mkdir(exist_ok=True)
        if os.access(own, os.W_OK):
            return CacheLocation(own, True)
    except OSError:
        pass
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cart-explorer"
    folder = base / hashlib.blake2b(str(root).encode(), digest_size=8).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    return CacheLocation(folder, False, f"the study folder is not writable; embeddings are "
                         f"cached in {folder}")


def cache_file(study_path: str | Path, name: str) -> Path:
    """Where cache file `name` lives: the study's own .cache when it already holds it, else
    the writable cache location."""
    own = Path(study_path).resolve() / ".cache" / name
    return own if own.is_file() else cache_location(study_path).folder / name


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def file_digest(path: str | Path, *, cache: CacheLocation | None = None) -> str:
    """BLAKE2b of a file's bytes (a folder: of its files' names and bytes), remembered per
    (name, size, mtime) so it is computed once."""
    path = Path(path).resolve()
    files = _files(path)
    stamp = f"{path}|" + ";".join(f"{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    if path.is_dir():
        stamp = f"{path}|" + hashlib.blake2b(stamp.encode(), digest_size=16).hexdigest()
    memo = (cache.folder / "digests.json") if cache else None
    known: dict[str, str] = {}
    if memo is not None and memo.is_file():
        try:
            known = json.loads(memo.read_text())
        except (OSError, ValueError):
            known = {}
    if stamp in known:
        return known[stamp]
    h = hashlib.blake2b(digest_size=16)
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode())
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    digest = h.hexdigest()
    if memo is not None:
        known = {k: v for k, v in known.items() if not k.startswith(f"{path}|")}
        known[stamp] = digest
        atomic_write(memo, json.dumps(known, indent=0).encode())
    return digest


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)   # mkstemp makes 0600; other server processes read the cache
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_array(path: Path, values: np.ndarray) -> None:
    """Write a float32 array as .npy atomically (readers never see half a file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npy")
    os.close(fd)
    try:
        np.save(tmp, np.ascontiguousarray(values, dtype=np.float32))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_array(path: Path) -> np.ndarray:
    return np.load(path).astype(np.float32, copy=False)


@dataclass(frozen=True)
class GeneStore:
    """The gene-column store read back: log-normalised cells x genes as CSC plus the
    within-column ranks of its non-zeros and each column's tie term (for marker tests)."""

    matrix: Any
    ranks: np.ndarray | None
    ties: np.ndarray | None
    normalised_from_counts: bool


def write_gene_store(path: Path, csc: Any, *, ranks: np.ndarray, ties: np.ndarray,
                     normalised_from_counts: bool, source: str) -> None:
    """Write the CSC gene-column store (data, indices, indptr, ranks, ties) atomically."""
    import h5py

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".h5")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as out:
            out.create_dataset("data", data=csc.data.astype(np.float32, copy=False))
            out.create_dataset("indices", data=csc.indices.astype(np.int32, copy=False))
            out.create_dataset("indptr", data=csc.indptr.astype(np.int64, copy=False))
            out.create_dataset("ranks", data=ranks)
            out.create_dataset("ties", data=ties)
            out.attrs["shape"] = np.asarray(csc.shape, dtype=np.int64)
            out.attrs["normalised_from_counts"] = bool(normalised_from_counts)
            out.attrs["source"] = source
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_gene_store(path: Path, *, with_ranks: bool = False) -> GeneStore:
    import h5py
    import scipy.sparse as sp

    with h5py.File(path, "r") as f:
        shape = tuple(int(v) for v in f.attrs["shape"])
        csc = sp.csc_matrix((f["data"][:], f["indices"][:], f["indptr"][:]), shape=shape)
        ranks = f["ranks"][:] if with_ranks else None
        ties = f["ties"][:] if with_ranks else None
        return GeneStore(csc, ranks, ties, bool(f.attrs.get("normalised_from_counts", False)))


def read_gene_column(path: Path, j: int) -> np.ndarray:
    """Column j of the store as a dense float32 vector over every cell."""
    import h5py

    with h5py.File(path, "r") as f:
        n = int(f.attrs["shape"][0])
        lo, hi = (int(v) for v in f["indptr"][j:j + 2])
        out = np.zeros(n, dtype=np.float32)
        out[f["indices"][lo:hi]] = f["data"][lo:hi]
    return out


def save_frames(path: Path, frames: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write named polars frames (Parquet) and a JSON metadata record as one zip file,
    atomically (a derived result such as a pseudobulk test)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, frame in frames.items():
            part = io.BytesIO()
            frame.write_parquet(part)
            z.writestr(f"{name}.parquet", part.getvalue())
        z.writestr("meta.json", json.dumps(meta))
    atomic_write(path, buf.getvalue())


def load_frames(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The frames and metadata written by `save_frames`."""
    import io
    import zipfile

    import polars as pl

    with zipfile.ZipFile(path) as z:
        frames = {n.removesuffix(".parquet"): pl.read_parquet(io.BytesIO(z.read(n)))
                  for n in z.namelist() if n.endswith(".parquet")}
        meta = json.loads(z.read("meta.json"))
    return frames, meta
