"""Single-cell files as labs hand them over -> the `[single_cell]` table of study.toml.

`propose_single_cell(path)` opens the file lazily (obs columns and matrix headers only) and
returns the table that records every choice (format, modality, counts and log-normalised
matrices, gene-symbol column, obs column per canonical name, timepoint label -> day) plus a
"findings" list: what was detected, what is ambiguous (with the options) and what is missing.
The loader applies the same table, so a file never has to be edited in Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["propose_single_cell", "is_single_cell"]


def _is_10x(path: Path) -> bool:
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        return any(n.startswith("matrix.mtx") for n in names) and any(
            n.startswith(("features.tsv", "genes.tsv")) for n in names)
    if path.suffix.lower() != ".h5":
        return False
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return "matrix" in f and "barcodes" in f["matrix"] or any(
                "barcodes" in f[k] for k in f.keys() if hasattr(f[k], "keys"))
    except OSError:
        return False


def is_single_cell(path: Path) -> bool:
    """True for .h5ad, .h5mu, .loom, AnnData zarr folders and 10x matrices (.h5 or folder)."""
    from data_loaders.single_cell import detect_format

    return detect_format(path) is not None or _is_10x(path)


def _finding(severity: str, message: str, fix: str = "", options: tuple[str, ...] = ()
             ) -> dict[str, Any]:
    d: dict[str, Any] = {"severity": severity, "message": message}
    if fix:
        d["fix"] = fix
    if options:
        d["options"] = list(options)
    return d


def _summary(store: Any) -> list[dict[str, Any]]:
    cells = store.cells(("subject_id", "sample_id", "day", "cell_type"))
    out = [_finding("note", f"{store.n_obs:,} cells x {len(store.gene_names):,} genes")]
    if "subject_id" in cells.columns:
        ids = sorted(set(cells.get_column("subject_id").drop_nulls().to_list()))
        out.append(_finding("note", f"{len(ids)} patient(s): {', '.join(ids[:12])}"
                            + (" ..." if len(ids) > 12 else "")))
    if "day" in cells.columns:
        days = sorted(set(cells.get_column("day").drop_nulls().to_list()))
        out.append(_finding("note", "days: " + (", ".join(map(str, days[:20])) or "none")))
    if "cell_type" in cells.columns:
        counts = cells.get_column("cell_type").value_counts(sort=True)
        types = counts.get_column("cell_type").to_list()
        out.append(_finding("note", f"{len(types)} cell type(s): {', '.join(map(str, types[:10]))}"
                            + (" ..." if len(types) > 10 else "")))
    if store.embeddings:
        out.append(_finding("note", f"embeddings: {', '.join(store.embeddings)}"))
    if store.modalities[1]:
        chains = store.receptors
        n_cells = chains.get_column("cell_id").n_unique() if chains.height else 0
        out.append(_finding("note", f"receptor modality {store.modalities[1]!r}: "
                            f"{chains.height:,} chains of {n_cells:,} cells (kept: derived "
                            "table `receptors`)"))
    return out


def _propose_10x(path: Path, given: dict[str, Any]) -> dict[str, Any]:
    from data_loaders.errors import StudyError
    from data_loaders.formats.tenx import read_10x_counts

    table: dict[str, Any] = {"file": path.name, "format": "10x"}
    try:
        tx = read_10x_counts(path, name=path.name)
    except StudyError as err:
        return {**table, "findings": [_finding("error", str(err))]}
    suffixes = sorted({b.rsplit("-", 1)[-1] for b in tx.barcodes if "-" in b})
    findings = [_finding("note", f"10x Cell Ranger output: {tx.counts.shape[0]:,} cells x "
                         f"{tx.counts.shape[1]:,} features, raw counts")]
    keys = {k: given[k] for k in ("sample_id", "barcode_suffix", "subject_id", "day",
                                  "timepoint") if k in given}
    if "sample_id" in keys or "barcode_suffix" in keys:
        findings.append(_finding("note", "cells from " + (
            f"sample {keys['sample_id']}" if "sample_id" in keys else "the samples of "
            "barcode_suffix") + (f" of patient {keys['subject_id']}" if "subject_id" in keys
                                 else " (patient and day from the samples table)")))
    else:
        findings.append(_finding(
            "error", "a 10x matrix does not say which sample its cells come from",
            fix="give [single_cell] sample_id (one sample, with subject_id and day or "
            "timepoint, or a samples table row) or barcode_suffix = { \"1\" = \"S1\", ... } "
            "for an aggregated run",
            options=tuple(f"barcode suffix -{s}" for s in suffixes[:8])))
    return {**table, **keys, "findings": findings}


def propose_single_cell(path: Path, *, settings: Mapping[str, Any] | None = None
                        ) -> dict[str, Any]:
    """The `[single_cell]` table for study.toml plus "findings" (list of dicts with
    severity, message and, where useful, fix and options) for one single-cell file.

    `settings`: choices already made (keys of the `[single_cell]` table, nested or dotted:
    `{"obs": {"subject_id": "donor"}}` or `{"obs.subject_id": "donor"}`, `sample_id` for a
    10x matrix); the proposal is made with them and reports on them."""
    from data_loaders.single_cell import SingleCellConfig, SingleCellStore, detect_format
    from data_loaders.single_cell.mapping import nested

    path = Path(path)
    given = nested(settings)
    if detect_format(path) is None:
        if _is_10x(path):
            return _propose_10x(path, given)
        return {"file": path.name, "findings": [_finding(
            "error", f"{path.name} is not a single-cell file this reader knows",
            fix="give an .h5ad, .h5mu, .loom, AnnData .zarr folder or 10x matrix")]}
    try:
        store = SingleCellStore(path, SingleCellConfig.from_config(given))
        table = store.config_table(file=path.name)
        findings = [f.as_dict() for f in store.findings]
        if not any(f["severity"] == "error" for f in findings):
            findings += _summary(store)
    except Exception as exc:  # noqa: BLE001 - an unreadable file is a finding
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return {"file": path.name, "findings": [_finding(
            "error", f"{path.name} could not be opened: {text}",
            fix="re-write it with anndata/mudata or loompy; it may be truncated")]}
    return {**table, "findings": findings}
