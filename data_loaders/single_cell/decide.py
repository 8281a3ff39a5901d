"""The store's decisions, made from obs columns, var columns and the first stored values of
each matrix (nothing larger is read): which obs column is each canonical column, which
matrix holds counts and which log-normalised values, where the gene symbols are. Each
decision is written as a `Finding` (see `store.SingleCellStore.resolved`)."""

from __future__ import annotations

from typing import Any

import polars as pl

from data_loaders.single_cell.mapping import (
    CANONICAL_OBS,
    CLUSTER_COLUMNS,
    CLUSTER_PATTERN,
    COUNTS_LAYERS,
    LOGNORM_LAYERS,
    OBS_ALIASES,
    SYMBOL_COLUMNS,
    find_obs_column,
    fold,
    looks_like_ensembl,
)
from data_loaders.single_cell.store import TARGET_SUM, Finding
from data_loaders.timepoints import label_day

__all__ = ["resolve_obs", "resolve_matrices", "resolve_symbols", "KIND_TEXT"]

KIND_TEXT = {"counts": "integer counts", "lognorm": "log-normalised values",
             "normalised": "normalised values (not logged)",
             "scaled": "scaled (centred, negative) values", "empty": "no values",
             "invalid": "non-finite values"}


def _numeric(store: Any, name: str) -> bool:
    return store.obs_column(name).dtype.is_numeric()


def resolve_obs(store: Any, findings: list[Finding]
                ) -> tuple[dict[str, str], str, str, dict[str, int | None]]:
    cols = list(store.obs_columns)
    chosen: dict[str, str] = {}
    for canon, col in store.config.obs.items():
        if canon not in CANONICAL_OBS:
            findings.append(Finding("warning", f"[single_cell.obs] {canon!r} is not a "
                                    "canonical column and is ignored",
                                    fix=f"use one of {', '.join(CANONICAL_OBS)}"))
        elif col not in cols:
            findings.append(Finding("error", f"[single_cell.obs] {canon} = {col!r}: no such "
                                    "obs column", fix="choose one of: "
                                    + ", ".join(cols[:20]), column=f"obs.{canon}"))
        else:
            chosen[canon] = col
    consts = store.config.constants
    for canon in CANONICAL_OBS:
        if canon in chosen or canon in store.config.obs or canon in consts:
            continue
        aliases = [a for a in OBS_ALIASES[canon] if not (canon == "subject_id"
                                                        and fold(a) == "origident")]
        col = find_obs_column(cols, aliases, exclude=chosen.values())
        if col is None:
            continue
        if canon == "day" and not _numeric(store, col):
            if "timepoint" not in chosen:       # "D28" in a day column: labels
                chosen["timepoint"] = col
            continue
        if canon == "timepoint" and _numeric(store, col) and "day" not in chosen:
            chosen["day"] = col                 # a numeric "time": days
            continue
        chosen[canon] = col
    _orig_ident(store, cols, chosen, findings)
    # cell type, else clusters (a "cell type" column of bare numbers holds clusters)
    kind = "annotation" if "cell_type" in chosen else "none"
    if kind == "annotation" and store.obs_column(chosen["cell_type"]).cast(pl.String) \
            .drop_nulls().str.contains(r"^\d+$").all():
        kind = "clusters"
    cluster = find_obs_column(cols, CLUSTER_COLUMNS, exclude=chosen.values()) or next(
        (c for c in cols if CLUSTER_PATTERN.search(c) and c not in chosen.values()), None)
    if store.config.cell_type_from == "clusters" and "cell_type" in store.config.obs:
        kind = "clusters"
    elif kind == "none" and cluster is not None:
        chosen["cell_type"], kind = cluster, "clusters"
        findings.append(Finding("note", f"no cell-type annotation in obs; cells are shown "
                                f"by cluster (obs {cluster!r})", fix="name the annotation "
                                "column in [single_cell.obs] cell_type when there is one",
                                column="obs.cell_type"))
    elif kind == "none":
        findings.append(Finding("note", "no cell-type annotation or cluster column in obs; "
                                "cells are 'unannotated'", column="obs.cell_type",
                                fix="name it in [single_cell.obs] cell_type"))
    # time
    tps: dict[str, int | None] = {}
    day_from = "day" if "day" in chosen else "constant" if (
        "day" in consts or ("timepoint" in consts and "timepoint" not in chosen)) else "none"
    if "timepoint" in chosen:
        labels = store.obs_column(chosen["timepoint"]).cast(pl.String).drop_nulls().unique(
            maintain_order=True).to_list()
        tps = {lab: label_day(lab, overrides=store.config.timepoints) for lab in labels}
        if day_from == "none":
            day_from = "timepoint"
            missing = [lab for lab, d in tps.items() if d is None]
            if missing:
                findings.append(Finding(
                    "warning", f"timepoint label(s) {', '.join(map(repr, missing[:8]))} of "
                    f"obs {chosen['timepoint']!r} name no study day; their cells have no day",
                    fix="map them in study.toml [single_cell.timepoints], e.g. "
                    f"{missing[0]!r} = 30 (or give each sample's day in the samples "
                    "table)", options=tuple(missing), column="obs.timepoint"))
    for canon, col in chosen.items():
        if canon in store.config.obs:
            continue
        names = OBS_ALIASES.get(canon, ()) + (CLUSTER_COLUMNS if canon == "cell_type"
                                              else ())
        others = tuple(c for c in cols if c != col and c not in chosen.values()
                       and fold(c) in {fold(a) for a in names})
        if col != canon or others:
            findings.append(Finding(
                "note", f"{canon} from obs {col!r}" + (
                    f" (also possible: {', '.join(map(repr, others))})" if others else ""),
                fix=f"choose another in [single_cell.obs] {canon}" if others else "",
                options=others, column=f"obs.{canon}"))
    for canon, value in consts.items():
        findings.append(Finding("note", f"{canon} = {value!r} for every cell ([single_cell] "
                                f"{canon})", column=f"obs.{canon}"))
    if day_from == "constant" and "day" not in consts and label_day(
            consts["timepoint"], overrides=store.config.timepoints) is None:
        findings.append(Finding("warning", f"timepoint {consts['timepoint']!r} names no study "
                                "day; the cells have no day", column="obs.timepoint",
                                fix="give [single_cell] day, or map the label in "
                                "[single_cell.timepoints]"))
    if "subject_id" not in chosen and "subject_id" not in consts:
        text = [c for c in cols if not _numeric(store, c)][:12]
        findings.append(Finding("error", "obs needs subject_id and sample_id or day: no obs "
                                "column names the patient (looked for "
                                "subject_id, donor_id, patient, patient_id, subject, ...)",
                                fix="name it in study.toml [single_cell.obs] subject_id, or give "
                                "one patient for every cell: [single_cell] subject_id = \"P1\"",
                                options=tuple(text), column="obs"))
    if "sample_id" not in chosen and "sample_id" not in consts and day_from == "none":
        findings.append(Finding("error", "obs needs subject_id and sample_id or day: no obs "
                                "column gives the sample or the time "
                                "(looked for sample, sample_id, orig.ident, batch, day, "
                                "timepoint, visit, ...)", column="obs",
                                fix="name one in [single_cell.obs] sample_id or timepoint, or "
                                "give one for every cell: [single_cell] sample_id = \"S1\" or "
                                "timepoint = \"D28\""))
    return chosen, kind, day_from, tps


def _orig_ident(store: Any, cols: list[str], chosen: dict[str, str],
                findings: list[Finding]) -> None:
    """Seurat's orig.ident names the sample of each cell, or (in many studies) the
    patient: it is the patient when no other column is and one value spans several
    timepoints."""
    orig = find_obs_column(cols, ["orig.ident"])
    if orig is None or "subject_id" in chosen or "subject_id" in store.config.obs:
        return
    spans = False
    time_col = chosen.get("timepoint") or chosen.get("day")
    if time_col:
        pairs = pl.DataFrame({"o": store.obs_column(orig).cast(pl.String),
                              "t": store.obs_column(time_col).cast(pl.String)})
        spans = bool((pairs.group_by("o").agg(pl.col("t").n_unique())
                      .get_column("t") > 1).any())
    if spans:
        chosen["subject_id"] = orig
        if chosen.get("sample_id") == orig:
            del chosen["sample_id"]
        findings.append(Finding("note", f"obs {orig!r} taken as the patient (each value "
                                "spans several timepoints)", options=("sample_id",),
                                fix="set [single_cell.obs] sample_id = \"orig.ident\" if "
                                "it names samples", column="obs.subject_id"))


def resolve_matrices(store: Any, findings: list[Finding]) -> tuple[str | None, str | None, str]:
    by_loc = {m.location: m for m in store.matrices}
    for m in store.matrices:
        findings.append(Finding("note", f"{m.location}: {m.shape[0]:,} cells x "
                                f"{m.shape[1]:,} genes, holds {KIND_TEXT[m.kind]}"))
    layers = [loc for loc in by_loc if loc.startswith("layers/")]
    counts_order = [f"layers/{n}" for n in COUNTS_LAYERS] + ["raw/X", "X"] + layers
    log_order = ["X"] + [f"layers/{n}" for n in LOGNORM_LAYERS] + ["raw/X"] + layers

    def pick(order: list[str], kinds: tuple[str, ...]) -> str | None:
        return next((loc for loc in order if loc in by_loc and by_loc[loc].kind in kinds),
                    None)

    counts = pick(counts_order, ("counts",))
    if store.config.counts:
        m = by_loc.get(store.config.counts)
        if m is None or m.kind != "counts":
            findings.append(Finding("error", f"[single_cell] counts = "
                                    f"{store.config.counts!r}: " + (
                                        "no such matrix" if m is None else
                                        f"it holds {KIND_TEXT[m.kind]}, not counts"),
                                    fix="use one of: " + ", ".join(
                                        loc for loc, i in by_loc.items()
                                        if i.kind == "counts") or "remove the setting"))
        else:
            counts = store.config.counts
    lognorm, how = pick(log_order, ("lognorm",)), "file"
    if lognorm is None and pick(log_order, ("normalised",)):
        lognorm, how = pick(log_order, ("normalised",)), "log1p"
    if store.config.lognorm:
        want = store.config.lognorm
        m = by_loc.get(want)
        if want == "counts" and counts:
            lognorm, how = counts, "from_counts"
        elif m is None or m.kind not in ("lognorm", "normalised"):
            findings.append(Finding("error", f"[single_cell] lognorm = {want!r}: " + (
                "no such matrix" if m is None else f"it holds {KIND_TEXT[m.kind]}"),
                fix="use a log-normalised matrix or \"counts\" (normalised here)"))
        else:
            lognorm, how = want, "file" if m.kind == "lognorm" else "log1p"
    if lognorm is None and counts is not None:
        lognorm, how = counts, "from_counts"
    scaled = [loc for loc, m in by_loc.items() if m.kind == "scaled"]
    if scaled:
        findings.append(Finding("note", f"{', '.join(scaled)} hold(s) scaled (centred) "
                                "values: not used for colouring, markers or embeddings"))
    if counts:
        findings.append(Finding("note", f"counts from {counts}: highly variable genes and "
                                "normalisation for computed embeddings"))
    if lognorm:
        findings.append(Finding("note", "expression for colouring and marker genes: " + {
            "file": f"{lognorm} (log-normalised)",
            "log1p": f"log1p of {lognorm} (normalised, not yet logged)",
            "from_counts": f"log1p(counts per {TARGET_SUM:,.0f}) of {lognorm}"}[how]))
    else:
        findings.append(Finding("warning", "no matrix holds counts or log-normalised values "
                                "(only " + (", ".join(f"{loc} {KIND_TEXT[m.kind]}" for loc, m
                                                     in by_loc.items()) or "none") + ")",
                                fix="add raw counts (layers['counts'] or .raw) to colour "
                                "by gene, rank markers and compute embeddings"))
    return counts, lognorm, how


def resolve_symbols(store: Any, loc: str, findings: list[Finding]) -> str | None:
    with store.open() as h:
        names = h.var_names(loc)
        columns = h.var_columns(loc)
        wanted = store.config.gene_symbols
        if wanted:
            if wanted in columns or wanted in h.var_columns("X"):
                return wanted
            findings.append(Finding("error", f"[single_cell] gene_symbols = {wanted!r}: no "
                                    "such var column", fix="use one of: "
                                    + ", ".join(columns[:15])))
            return None
        if not looks_like_ensembl(names):
            return None
        for col in [c for c in SYMBOL_COLUMNS if c in columns] + [
                c for c in SYMBOL_COLUMNS if c in h.var_columns("X") and c not in columns]:
            try:
                values = [v for v in h.var_column(loc if col in columns else "X", col)[:2000]
                          if v]
            except (KeyError, ValueError, TypeError):
                continue
            if values and not looks_like_ensembl(values):
                findings.append(Finding("note", f"var_names are Ensembl ids; gene symbols "
                                        f"from var {col!r} (search and labels by symbol)"))
                return col
    findings.append(Finding("warning", "var_names are Ensembl ids and no var column holds "
                            "gene symbols; genes are shown by id",
                            fix="name the symbol column in [single_cell] gene_symbols"))
    return None
