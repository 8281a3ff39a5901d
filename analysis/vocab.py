"""One vocabulary for every layer: tissues and cell lineages, written once and imported.

One job: the study's words and spans (response groups and categories, event categories, day
windows, tissues, lineages), each defined once with its parser; long because the lineage
table is.

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

Response. A patient's response group is Responder (best response CR or PR), Non-responder (NR)
or Not evaluable (no assessment, or only NE); `RESPONSE_GROUPS` is their display order and
`RESPONSE_CATEGORIES` the order of the per-assessment categories (NIH consensus criteria for
aplastic anaemia, Camitta 2000; DESIGN.md section 2: responses are CR/PR/NR, NE when not
evaluable); `RESPONSE_CRITERIA` are the count-based rules that derive them (NIH, BSH; DESIGN.md
section 3). `LANDMARKS` are the conventional assessment days (D28, M3, M6, M12).

Day windows. A span of study days is a `DayWindow` (inclusive bounds, None = open), written in
text as "lo:hi" with either side empty (":28", "61:") or by a name of `WINDOWS` (baseline, D14,
D28, M3, M6, M12); `DayWindow.parse` is the one parser of both forms, used by the URL, the CLI,
the analysis options and the pages.

Event categories. `EVENT_CATEGORIES` are the values of events.category (DESIGN.md section 2).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import polars as pl

__all__ = ["BLOOD", "MARROW", "TISSUES", "Tissue", "TISSUE_ALIASES", "fold_tissue",
           "fold_tissue_expr", "is_blood", "LINEAGES", "LINEAGE_NAMES", "UNMAPPED",
           "normalise_label", "lineage_table", "lineage_of", "lineage_expr", "unmapped_labels",
           "RESPONDER", "NON_RESPONDER", "NOT_EVALUABLE", "RESPONSE_GROUPS", "ResponseGroup",
           "CR", "PR", "NR", "NE", "RESPONSE_CATEGORIES", "ResponseCategory", "RESPONDING",
           "ASSESSED", "RESPONSE_RANK", "ResponseCriteria", "RESPONSE_CRITERIA", "EVENT_CATEGORIES", "EventCategory", "AE_CATEGORIES",
           "DayWindow", "WINDOWS", "WINDOW_NAMES", "LANDMARKS", "ColourBy", "COLOUR_BY"]

# ---- response groups and categories ----------------------------------------------------------
ResponseGroup = Literal["Responder", "Non-responder", "Not evaluable"]
RESPONDER: ResponseGroup = "Responder"
NON_RESPONDER: ResponseGroup = "Non-responder"
NOT_EVALUABLE: ResponseGroup = "Not evaluable"
RESPONSE_GROUPS: tuple[ResponseGroup, ...] = get_args(ResponseGroup)   # display order

ResponseCategory = Literal["CR", "PR", "NR", "NE"]
CR: ResponseCategory = "CR"
PR: ResponseCategory = "PR"
NR: ResponseCategory = "NR"
NE: ResponseCategory = "NE"
RESPONSE_CATEGORIES: tuple[ResponseCategory, ...] = get_args(ResponseCategory)  # best first
RESPONDING: tuple[ResponseCategory, ...] = (CR, PR)        # a responder's best response
ASSESSED: tuple[ResponseCategory, ...] = (CR, PR, NR)      # an evaluable assessment
RESPONSE_RANK: Mapping[str, int] = {CR: 3, PR: 2, NR: 1, NE: 0}   # higher is better
# the count-based response criteria the app derives (analysis.response): NIH (Townsley 2017)
# and BSH/Camitta
ResponseCriteria = Literal["NIH", "BSH"]
RESPONSE_CRITERIA: tuple[ResponseCriteria, ...] = get_args(ResponseCriteria)

# ---- event categories (events.category, DESIGN.md section 2) ----------------------------------
EventCategory = Literal["infusion", "lymphodepletion", "transfusion", "crs", "icans",
                        "infection", "adverse_event", "growth_factor", "hsct", "progression",
                        "death", "medication"]
EVENT_CATEGORIES: tuple[EventCategory, ...] = get_args(EventCategory)
# the categories that are adverse events (toxicity tables and the safety page)
AE_CATEGORIES: tuple[EventCategory, ...] = ("adverse_event", "infection", "crs", "icans")


# ---- day windows -----------------------------------------------------------------------------
def _centre(lo: int | None, hi: int | None) -> float:
    if lo is not None and hi is not None:
        return (lo + hi) / 2
    if hi is not None:
        return float(hi)
    return float(lo) if lo is not None else 0.0


def _bound_text(v: int | None) -> str:
    return "" if v is None else str(v)


@dataclass(frozen=True)
class DayWindow:
    """Study days lo <= day <= hi (None: open on that side; day 0 is the infusion).

    The one type for a span of study days: the cohort's and a focus's window, a figure's
    shaded band, a view's axis limits and the named visit windows. `DayWindow(0, 28)`;
    `str()` and `text` give "lo:hi" (what `DayWindow.parse` reads back, and what links and the
    CLI write). `label` names the window on axes and in tables; `centre` is the day a
    window's representative sample is closest to (default: the midpoint, or the closed bound
    of a half-open window). `DayWindow.parse` reads "lo:hi" or a name of `WINDOWS`."""

    lo: int | None = None
    hi: int | None = None
    label: str = ""
    centre: float | None = None     # None: set from the bounds when the window is made

    def __post_init__(self) -> None:
        for name in ("lo", "hi"):
            bound = getattr(self, name)
            if bound is None or type(bound) is int:
                continue
            whole = (isinstance(bound, numbers.Integral) or
                     (isinstance(bound, numbers.Real) and float(bound).is_integer()))
            if isinstance(bound, bool) or not whole:
                raise TypeError(f"DayWindow {name}={bound!r}: the bounds are whole study days "
                                "(int or None); write DayWindow(lo, hi, label=...) or "
                                "DayWindow.parse(\"lo:hi\")")
            object.__setattr__(self, name, int(bound))   # numpy ints, 28.0
        if self.lo is not None and self.hi is not None and self.lo > self.hi:
            raise ValueError(f"day window {self.lo}:{self.hi}: the first day is after the "
                             "last; write it as lo:hi with lo <= hi")
        if self.centre is None:
            object.__setattr__(self, "centre", _centre(self.lo, self.hi))
        if not self.label:
            object.__setattr__(self, "label", f"days {self.text}")

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        # Python that makes the window again ("Show the code"); label and centre only when
        # they are not the ones the bounds give
        args = [repr(self.lo), repr(self.hi)]
        if self.label != f"days {self.text}":
            args.append(f"label={self.label!r}")
        if self.centre != _centre(self.lo, self.hi):
            args.append(f"centre={self.centre!r}")
        return f"DayWindow({', '.join(args)})"

    @classmethod
    def parse(cls, text: str | DayWindow | None) -> DayWindow:
        """A window from text: a name of `WINDOWS` (case-insensitive: baseline, D14, D28, M3,
        M6, M12) or "lo:hi" in study days, either side may be empty (":28" = up to day 28,
        "61:" = from day 61, ":" or "" = every day). A DayWindow is returned as it is.
        Anything else is a ValueError saying what to write."""
        if isinstance(text, DayWindow):
            return text
        raw = "" if text is None else str(text).strip()
        if not raw or raw == ":":
            return cls()
        named = _WINDOW_BY_NAME.get(raw.lower())
        if named is not None:
            return named
        if ":" in raw:
            lo_s, hi_s = (part.strip() for part in raw.split(":", 1))
            try:
                lo = int(lo_s) if lo_s else None
                hi = int(hi_s) if hi_s else None
            except ValueError:
                pass
            else:
                return cls(lo=lo, hi=hi)
        raise ValueError(f"unknown window {raw!r}; use one of {', '.join(WINDOWS)} or lo:hi "
                         "in study days (e.g. 21:35, :28, 61:)")

    @classmethod
    def of(cls, lo: int | None, hi: int | None, *, label: str = "") -> DayWindow:
        """The window from two bounds (None: open)."""
        return cls(lo, hi, label=label)

    @property
    def text(self) -> str:
        """"lo:hi" (either side empty when open): what `parse` reads back."""
        return f"{_bound_text(self.lo)}:{_bound_text(self.hi)}"

    def as_json(self) -> str | dict[str, Any]:
        """The window in JSON as links and the CLI write it: the name of a named window
        ("D28"), else "lo:hi"; a window with its own label or centre as an object of its
        fields (`DayWindow.parse` reads the first two, `DayWindow(**obj)` the last)."""
        if _WINDOW_BY_NAME.get(self.label.lower()) == self:
            return self.label
        if self == DayWindow(self.lo, self.hi):
            return self.text
        return {"lo": self.lo, "hi": self.hi, "label": self.label, "centre": self.centre}

    @property
    def bounds(self) -> tuple[int | None, int | None]:
        """(lo, hi), None where open."""
        return self.lo, self.hi

    @property
    def unlabelled(self) -> DayWindow:
        """The same days without a name or a chosen centre (what a cohort or a link keeps:
        windows with the same days are equal)."""
        plain = DayWindow(self.lo, self.hi)
        return self if plain == self else plain

    def within(self, lo: float, hi: float) -> tuple[float, float]:
        """The window's ends with an open side closed at `lo` / `hi` (e.g. the axis range a
        shaded band ends at)."""
        return (lo if self.lo is None else self.lo, hi if self.hi is None else self.hi)

    @property
    def is_everything(self) -> bool:
        """No limit on either side."""
        return self.lo is None and self.hi is None

    def contains(self, day: pl.Expr | str = "day") -> pl.Expr:
        """An expression true for days inside the window (a column name or an expression);
        a null day is outside a bounded window and inside the unbounded one."""
        expr = pl.col(day) if isinstance(day, str) else day
        cond = pl.lit(True)
        if self.lo is not None:
            cond = cond & (expr >= self.lo)
        if self.hi is not None:
            cond = cond & (expr <= self.hi)
        return cond

    def overlaps(self, start: pl.Expr | str = "day", end: pl.Expr | str = "end_day") -> pl.Expr:
        """An expression true for spans (start..end, inclusive) that share a day with the
        window (e.g. a medication course)."""
        first = pl.col(start) if isinstance(start, str) else start
        last = pl.col(end) if isinstance(end, str) else end
        cond = pl.lit(True)
        if self.lo is not None:
            cond = cond & (last >= self.lo)
        if self.hi is not None:
            cond = cond & (first <= self.hi)
        return cond

    def filled(self, other: DayWindow | None) -> DayWindow:
        """This window with each open side taken from `other` (e.g. a view's own window,
        falling back side by side to the cohort's). A side of `other` that would end the
        window before it starts is not taken (the window's own bound decides)."""
        if other is None or (self.lo is not None and self.hi is not None):
            return self
        lo = other.lo if self.lo is None else self.lo
        hi = other.hi if self.hi is None else self.hi
        if lo is not None and hi is not None and lo > hi:
            lo, hi = self.lo, self.hi
        return DayWindow(lo, hi)

    def includes(self, day: float | None) -> bool:
        """Whether one day is inside the window (None: only in the unbounded window)."""
        if day is None:
            return self.is_everything
        return (self.lo is None or day >= self.lo) and (self.hi is None or day <= self.hi)

    def describe(self) -> str:
        """The window in words, with the sample each patient is represented by."""
        if self.lo is None and self.hi is None:
            span = "every day"
        elif self.lo is None:
            span = f"day <= {self.hi}"
        elif self.hi is None:
            span = f"day >= {self.lo}"
        else:
            span = f"days {self.lo} to {self.hi}"
        return f"{self.label}: {span}, the sample closest to day {self.centre:g} per patient"


# Named windows for "the sample at a visit": a patient's sample closest to the centre day.
WINDOWS: Mapping[str, DayWindow] = {
    "baseline": DayWindow(None, 0, "baseline"),
    "D14": DayWindow(11, 17, "D14"),
    "D28": DayWindow(21, 35, "D28"),
    "M3": DayWindow(76, 104, "M3"),
    "M6": DayWindow(150, 210, "M6"),
    "M12": DayWindow(305, 425, "M12"),
}
WINDOW_NAMES: tuple[str, ...] = tuple(WINDOWS)
_WINDOW_BY_NAME = {name.lower(): w for name, w in WINDOWS.items()}
# Conventional response landmarks, days after infusion: the centres of the named windows.
LANDMARKS: Mapping[str, int] = {name: int(WINDOWS[name].centre)
                                for name in ("D28", "M3", "M6", "M12")}


# ---- how per-patient figures colour patients -------------------------------------------------
ColourBy = Literal["patient", "response_group"]
COLOUR_BY: tuple[ColourBy, ...] = get_args(ColourBy)


# ---- tissue ----------------------------------------------------------------------------------

Tissue = Literal["blood", "marrow"]
BLOOD: Tissue = "blood"
MARROW: Tissue = "marrow"
TISSUES: tuple[Tissue, ...] = get_args(Tissue)

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
