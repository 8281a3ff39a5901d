"""Validation of a study's single-cell file when the study loads: open the store (obs and
matrix headers only), report what was detected and what is missing, check the patients."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import polars as pl

from data_loaders.errors import ValidationReport
from data_loaders.single_cell.backends import FORMATS, detect_format
from data_loaders.single_cell.mapping import SingleCellConfig
from data_loaders.single_cell.store import SingleCellStore

__all__ = ["find_single_cell_file", "open_single_cell", "single_cell_from_10x"]

_NAMES = {"h5ad": "AnnData .h5ad", "h5mu": "MuData .h5mu", "zarr": "AnnData zarr",
          "loom": "loom"}


def find_single_cell_file(root: Path, config: dict[str, Any]) -> Path | None:
    """The study's single-cell file: [single_cell] file, else single_cell.h5ad, else the first
    .h5ad, .h5mu, AnnData .zarr folder or .loom in the folder (in that order)."""
    sc_cfg = config.get("single_cell", {}) or {}
    if sc_cfg.get("file"):
        return root / str(sc_cfg["file"])
    if (root / "single_cell.h5ad").is_file():
        return root / "single_cell.h5ad"
    found = candidates(root)
    if found:
        return found[0]
    from data_loaders.single_cell.zarr_store import STORE_SUFFIX, read_manifest

    # only a converted store (its source file moved away): it stands alone
    return next((p for p in sorted(root.glob(f"*{STORE_SUFFIX}"))
                 if read_manifest(p) is not None), None)


def candidates(root: Path) -> list[Path]:
    """Every single-cell file or store directly in the study folder, in the order
    `find_single_cell_file` prefers them."""
    from data_loaders.single_cell.zarr_store import STORE_SUFFIX

    return [p for fmt in FORMATS for p in sorted(root.iterdir())
            if not p.name.startswith(".") and not p.name.endswith(STORE_SUFFIX)
            and detect_format(p) == fmt]


def open_single_cell(path: Path | str, config: dict[str, Any], *, rel: str,
                     known_subjects: Collection[str] | None, report: ValidationReport,
                     cache_root: Path | None = None) -> SingleCellStore | None:
    """The store of `path` with its findings added to `report`, or None (and an error) when
    the file cannot be used. `known_subjects` None: the study has no patients table. When
    the file has an up-to-date converted copy (`cli.py convert`), the store reads that."""
    from data_loaders.single_cell.zarr_store import ConvertedStore, is_url, read_manifest

    cfg = SingleCellConfig.from_config(config.get("single_cell"))
    standalone = is_url(path) or (Path(path).is_dir() and read_manifest(path) is not None)
    fresh = None if standalone else _fresh_copy(Path(path), cfg, cache_root)
    try:
        store = fresh or (ConvertedStore(path, config=cfg, cache_root=cache_root)
                          if standalone else SingleCellStore(path, cfg, cache_root=cache_root))
        store.n_obs     # noqa: B018 - opens the file: a broken one fails here
        findings = store.findings
    except Exception as exc:  # noqa: BLE001 - any failure to read the file is a finding
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        kind = "a converted store" if standalone else \
            _NAMES.get(detect_format(Path(path)) or "", "single-cell data")
        report.add("error", "single_cell", rel, f"could not be opened as {kind}: {text}",
                   fix="re-write the file with anndata/mudata (write_h5ad, write_zarr, "
                   "write_h5mu) or loompy; it may be truncated")
        return None
    for f in findings:
        if f.severity == "note" and f.message.split(":")[0].startswith(("X", "raw", "layers")):
            continue    # matrix inventory: shown by `cli.py import`, not on every load
        report.add(f.severity, "single_cell", rel, f.message, fix=f.fix,
                   column=f.column)
    if any(f.severity == "error" and f.column == "obs" for f in findings):
        return None
    subjects = store.canonical("subject_id")
    assert subjects is not None
    if known_subjects is not None:
        unknown = sorted(set(subjects.drop_nulls().unique().to_list()) - set(known_subjects))
        if unknown:
            report.add("error", "single_cell", rel,
                       f"{len(unknown)} subject_id(s) in obs not in patients: "
                       f"{', '.join(unknown[:6])}", column="obs.subject_id",
                       fix="add the patients or correct the patient column (study.toml "
                       "[single_cell.obs] subject_id); their cells show without patient data")
    folder = Path(path).parent
    if not standalone and not (config.get("single_cell") or {}).get("file") and \
            folder.exists():
        others = [p.name for p in candidates(folder) if p != path]
        if others and folder.name != ".cache":
            report.add("warning", "single_cell", rel, f"the study holds other single-cell "
                       f"files, not read: {', '.join(others[:6])}",
                       fix="a study reads one; name it in study.toml [single_cell] file "
                       "and move the others out")
    if not store.embeddings:
        report.add("note", "single_cell", rel, "no embedding in obsm (X_umap, umap, X_tsne, "
                   "X_pca, ...)", fix="precompute one with: python cli.py embed --study DIR")
    if fresh is not None or standalone:
        return store
    return converted_or_source(store, rel=rel, report=report)


def _fresh_copy(path: Path, cfg: SingleCellConfig, cache_root: Path | None) -> Any:
    """The converted store of `path` when its manifest names this file with the same size and
    modification time (no decision about the file is made again), else None."""
    from data_loaders.single_cell.zarr_store import (
        ConvertedStore,
        read_manifest,
        store_location,
    )

    location = store_location(path, cfg)
    if path.is_dir() and Path(location).resolve() == path.resolve():
        return None
    manifest = read_manifest(location)
    stamp = (manifest or {}).get("source", {})
    try:
        same = stamp.get("name") == path.name and \
            (stamp.get("size"), stamp.get("mtime_ns")) == _stamp(path)
    except OSError:
        return None
    if not same:
        return None
    return ConvertedStore(location, source=SingleCellStore(path, cfg, cache_root=cache_root))


def converted_or_source(store: SingleCellStore, *, rel: str, report: ValidationReport
                        ) -> SingleCellStore:
    """The converted store of `store`'s file when one exists and was made from this version
    of the file; else `store` (with a warning when the converted copy is out of date)."""
    from data_loaders.single_cell.zarr_store import (
        ConvertedStore,
        read_manifest,
        store_location,
    )

    location = store_location(store.path, store.config)
    if store.path.is_dir() and Path(location).resolve() == store.path.resolve():
        return store
    manifest = read_manifest(location)
    if manifest is None:
        if store.config.store:
            report.add("warning", "single_cell", rel, f"[single_cell] store {location} is not "
                       "a converted store; reading the file itself",
                       fix=f"python cli.py convert --study {store.cache_root}")
        return store
    stamp = manifest.get("source", {})
    try:
        same = stamp.get("name") == store.path.name and (
            (stamp.get("size"), stamp.get("mtime_ns")) == _stamp(store.path)
            or manifest.get("content_key") == store.content_key)
    except OSError:
        same = False
    if not same:
        report.add("warning", "single_cell", rel, f"the converted store {location} was made "
                   "from another version of the file; reading the file itself (slower)",
                   fix=f"convert again: python cli.py convert --study {store.cache_root}")
        return store
    report.add("note", "single_cell", rel, f"read through its converted store {location} "
               "(cell-major and gene-major copies)")
    return ConvertedStore(location, source=store)


def _stamp(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return (int(sum(p.stat().st_size for p in files)),
            int(max((p.stat().st_mtime_ns for p in files), default=0)))


def single_cell_from_10x(root: Path, table: dict[str, Any], samples: pl.DataFrame,
                         report: ValidationReport) -> Path | None:
    """`[single_cell] format = "10x"`: Cell Ranger output (file = the .h5 or the
    filtered_feature_bc_matrix folder) converted once to a cached .h5ad. The cells' sample is
    `sample_id` (one sample) or `barcode_suffix` (aggregated runs); the sample's patient and
    day come from the samples table, or for one sample from `subject_id` and `day` (or
    `timepoint`, a label) in the same table."""
    from data_loaders.formats.tenx import single_cell_from_sources
    from data_loaders.timepoints import label_day

    options = {k: table[k] for k in ("sample_id", "barcode_suffix") if k in table}
    sample = str(table.get("sample_id", "")) or None
    known = set(samples.get_column("sample_id").to_list()) if samples.height else set()
    if sample and sample not in known and table.get("subject_id"):
        day = table.get("day")
        tp = table.get("timepoint")
        if day is None and tp is not None:
            day = label_day(tp, overrides=table.get("timepoints"))
        row = pl.DataFrame({"sample_id": [sample], "subject_id": [str(table["subject_id"])],
                            "day": [None if day is None else int(day)],
                            "timepoint": [None if tp is None else str(tp)]},
                           schema={"sample_id": pl.String, "subject_id": pl.String,
                                   "day": pl.Int64, "timepoint": pl.String})
        samples = pl.concat([samples, row], how="diagonal_relaxed") if samples.height else row
    source = {"format": "10x", "path": str(table.get("file", "")), "options": options}
    return single_cell_from_sources(root, {"sources": [source]}, samples, report)
