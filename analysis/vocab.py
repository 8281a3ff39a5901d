"""One vocabulary for every layer: tissues and cell lineages, written once and imported.

Tissue. A study's files name the same specimen many ways ("Blood", "PB", "serum", "plasma",
"peripheral blood", "BM", "bone marrow aspirate", and in Chinese laboratory exports 外周血 /
骨髓). The loader folds every `tissue` value once with `fold_tissue` (DESIGN.md section 2: tissue
is blood or marrow), so no page or analysis decides again whether plasma is blood. Serum and
plasma are the fluid of peripheral blood, so a cytokine measured in serum and a count measured
in whole blood are both "blood" (the recorded name is kept by the loader in `specimen`). A
value not in the table is kept as written (lower case), never guessed.

Cell lineage. A cell-type label says its lineage only through an explicit table
(`LINEAGES`: label -> T, NK, B, myeloid, erythroid, progenitor, plasma, tumour, other); a study
adds or overrides labels with the `cell_lineages` rule setting (study.toml `[rules]`). Labels
are matched after folding case, "+" signs, hyphens, underscores, a trailing "cell(s)" and a plural "s", so
"CD4+ T cells", "CD4 T" and "cd4_t_cell" are one label. There is no pattern matching on
fragments of names: a pattern that took "T" at the start of a word counted "Transitional B
cells" and "Tumor cells" as T cells. A label that is in neither table has lineage "unmapped"
and is reported by `unmapped_labels`, so a study can add it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

__all__ = ["BLOOD", "MARROW", "TISSUE_ALIASES", "fold_tissue", "fold_tissue_expr",
           "is_blood", "LINEAGES", "LINEAGE_NAMES", "UNMAPPED", "normalise_label",
           "lineage_table", "lineage_of", "lineage_expr", "unmapped_labels"]

BLOOD = "blood"
MARROW = "marrow"

# recorded tissue (folded: lower case, single spaces) -> canonical tissue
TISSUE_ALIASES: Mapping[str, str] = {
    "blood": BLOOD, "whole blood": BLOOD, "peripheral blood": BLOOD, "pb": BLOOD,
    "wb": BLOOD, "venous blood": BLOOD, "serum": BLOOD, "plasma": BLOOD, "pbmc": BLOOD,
    "pbmcs": BLOOD, "edta blood": BLOOD, "外周血": BLOOD, "血液": BLOOD, "全血": BLOOD,
    "血清": BLOOD, "血浆": BLOOD,
    "marrow": MARROW, "bone marrow": MARROW, "bm": MARROW, "bone marrow aspirate": MARROW,
    "bma": MARROW, "marrow aspirate": MARROW, "bmmc": MARROW, "bone marrow biopsy": MARROW,
    "骨髓": MARROW,
}


def _fold_text(value: str) -> str:
    return re.sub(r"[\s_]+", " ", value.strip().lower())


def fold_tissue(value: str | None) -> str | None:
    """The canonical tissue of a recorded value: blood, marrow, or the value itself in lower
    case when it is neither (e.g. "csf", "lymph node"). None stays None."""
    if value is None:
        return None
    text = _fold_text(value)
    if not text:
        return None
    return TISSUE_ALIASES.get(text, text)


def fold_tissue_expr(column: str = "tissue") -> pl.Expr:
    """`fold_tissue` as a polars expression over a string column."""
    text = (pl.col(column).str.strip_chars().str.to_lowercase()
            .str.replace_all(r"[\s_]+", " "))
    text = pl.when(text == "").then(None).otherwise(text)
    return text.replace(dict(TISSUE_ALIASES)).alias(column)


def is_blood(column: str = "tissue") -> pl.Expr:
    """Rows in blood: tissue blood, or not stated (a measurement without a tissue is blood,
    the default specimen of every table in DESIGN.md section 2)."""
    return pl.col(column).is_null() | (pl.col(column) == BLOOD)


# ---- cell lineage ----------------------------------------------------------------------------
UNMAPPED = "unmapped"
LINEAGE_NAMES = ("T", "NK", "B", "plasma", "myeloid", "erythroid", "megakaryocyte",
                 "progenitor", "tumour", "stromal", "other")

_T = ("t", "t cell", "cd3 t", "cd4 t", "cd8 t", "cd4", "cd8", "cd4 naive", "cd8 naive",
      "naive cd4 t", "naive cd8 t", "cd4 memory", "cd8 memory", "memory cd4 t", "memory cd8 t",
      "cd4 tcm", "cd4 tem", "cd8 tcm", "cd8 tem", "cd4 temra", "cd8 temra", "cd8 effector",
      "cd8 effector memory t", "cd4 effector memory t", "cd4 central memory t",
      "cd8 central memory t", "effector memory t", "central memory t", "cytotoxic t",
      "helper t", "th1", "th2", "th17", "tfh", "treg", "regulatory t", "cd4 treg",
      "cd4 ctl", "cd8 proliferating", "cd4 proliferating", "proliferating t", "mait",
      "gdt", "gd t", "gamma delta t", "gammadelta t", "nkt", "nk t", "dnt", "double negative t",
      "car t", "cart", "car", "car positive t", "cd7 negative t", "cd7neg t", "tcm", "tem",
      "temra", "tn")
_NK = ("nk", "nk cell", "natural killer", "cd56 bright nk", "cd56bright nk", "cd56 dim nk",
       "cd56dim nk", "nk proliferating", "adaptive nk", "ilc", "innate lymphoid")
_B = ("b", "b cell", "naive b", "memory b", "transitional b", "immature b", "mature b",
      "intermediate b", "switched memory b", "unswitched memory b", "pro b", "pre b",
      "pro b cell", "pre b cell", "atypical memory b", "age associated b")
_PLASMA = ("plasma", "plasma cell", "plasmablast", "plasmablasts")
_MYELOID = ("monocyte", "monocytes", "cd14 monocyte", "cd16 monocyte", "cd14 mono",
            "cd16 mono", "classical monocyte", "non classical monocyte",
            "intermediate monocyte", "macrophage", "dc", "cdc", "cdc1", "cdc2", "pdc",
            "dendritic", "plasmacytoid dendritic", "conventional dendritic", "asdc",
            "neutrophil", "neutrophils", "granulocyte", "eosinophil", "basophil", "mast",
            "myelocyte", "promyelocyte", "metamyelocyte", "gmp", "myeloid")
_ERY = ("erythroid", "erythroid progenitor", "erythroblast", "early erythroid",
        "late erythroid", "proerythroblast", "normoblast", "rbc", "red blood cell",
        "reticulocyte")
_MK = ("megakaryocyte", "megakaryocytes", "platelet", "platelets", "mk", "mkp", "mep")
_PROG = ("hspc", "hsc", "mpp", "lmpp", "clp", "cmp", "progenitor", "stem",
         "hematopoietic stem", "haematopoietic stem", "cd34", "cd34 progenitor")
_TUMOUR = ("tumor", "tumour", "malignant", "cancer", "blast", "leukemic blast",
           "leukaemic blast")
_STROMAL = ("stromal", "fibroblast", "endothelial", "msc", "mesenchymal stromal",
            "osteoblast", "adipocyte")

LINEAGES: Mapping[str, str] = {
    **{k: "T" for k in _T}, **{k: "NK" for k in _NK}, **{k: "B" for k in _B},
    **{k: "plasma" for k in _PLASMA}, **{k: "myeloid" for k in _MYELOID},
    **{k: "erythroid" for k in _ERY}, **{k: "megakaryocyte" for k in _MK},
    **{k: "progenitor" for k in _PROG}, **{k: "tumour" for k in _TUMOUR},
    **{k: "stromal" for k in _STROMAL},
    "doublet": "other", "doublets": "other", "unknown": "other", "unassigned": "other",
    "low quality": "other",
}


def normalise_label(label: str) -> str:
    """A cell-type label folded for lookup: lower case, "+" and "-" signs, hyphens and
    underscores as spaces, a trailing "cell"/"cells" dropped ("CD4+ T cells" -> "cd4 t",
    "CAR-T" -> "car t", "CD7- T" -> "cd7 negative t")."""
    text = label.strip().lower()
    text = re.sub(r"(?<=[a-z0-9])-(?=\s|$)", " negative ", text)   # "CD7- T"
    text = text.replace("+", " ").replace("γδ", "gd")
    text = re.sub(r"[-_/,.()]+", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s*\bcells?$", "", text).strip()
    return text or label.strip().lower()


def lineage_table(extra: Iterable[Any] | Mapping[str, str] | None = None) -> dict[str, str]:
    """The label -> lineage lookup: the built-in LINEAGES overridden by a study's labels.

    `extra` is the `cell_lineages` rule setting: pairs (label, lineage), "label=lineage"
    texts, or a mapping. Lineages outside LINEAGE_NAMES are an error naming the label."""
    table = dict(LINEAGES)
    if not extra:
        return table
    pairs: list[tuple[str, str]] = []
    items = extra.items() if isinstance(extra, Mapping) else extra
    for item in items:
        if isinstance(item, str):
            if "=" not in item:
                raise ValueError(f"cell_lineages entry {item!r}: write it as "
                                 "[\"label\", \"lineage\"] or \"label=lineage\"")
            label, lineage = item.split("=", 1)
        else:
            seq = tuple(item)
            if len(seq) != 2:
                raise ValueError(f"cell_lineages entry {item!r}: expected a label and a "
                                 "lineage")
            label, lineage = seq
        pairs.append((str(label), str(lineage).strip()))
    known = {n.lower(): n for n in LINEAGE_NAMES}
    for label, lineage in pairs:
        canon = known.get(lineage.lower())
        if canon is None:
            raise ValueError(f"cell_lineages: lineage {lineage!r} for {label!r} is not one of "
                             f"{', '.join(LINEAGE_NAMES)}")
        table[normalise_label(label)] = canon
    return table


def lineage_of(label: str | None, *, table: Mapping[str, str] | None = None) -> str:
    """The lineage of one cell-type label (UNMAPPED when the table does not know it)."""
    if label is None:
        return UNMAPPED
    lookup = LINEAGES if table is None else table
    key = normalise_label(str(label))
    found = lookup.get(key)
    if found is None and key.endswith("s") and len(key) > 2:
        found = lookup.get(key[:-1])          # "CD14+ Monocytes" -> "cd14 monocyte"
    return found or UNMAPPED


def lineage_expr(labels: pl.Series | Iterable[str], *, column: str = "cell_type",
                 table: Mapping[str, str] | None = None) -> pl.Expr:
    """An expression giving the lineage of `column`, built from the distinct labels present
    (one lookup per label, not per cell)."""
    distinct = sorted({str(x) for x in labels if x is not None})
    mapping = {x: lineage_of(x, table=table) for x in distinct}
    return (pl.col(column).cast(pl.String)
            .replace_strict(mapping, default=UNMAPPED, return_dtype=pl.String)
            .alias("lineage"))


def unmapped_labels(labels: Iterable[str], *, table: Mapping[str, str] | None = None
                    ) -> list[str]:
    """The distinct labels whose lineage is not known (for a study to add to
    `cell_lineages`)."""
    return sorted({str(x) for x in labels if x is not None
                   and lineage_of(str(x), table=table) == UNMAPPED})
