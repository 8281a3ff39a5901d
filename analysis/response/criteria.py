"""Response categories and criteria (NIH, BSH), their thresholds and the small expression helpers
the assessment is written with; assessment-day parsing and the reference lines a figure draws."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from analysis.rules import DEFAULT_RULES, Rules
from analysis.vocab import RESPONSE_CATEGORIES, RESPONSE_CRITERIA

__all__ = ["CRITERIA", "CATEGORIES", "TI_PRODUCTS", "criteria_name", "CRITERIA_ALIASES",
           "parse_days", "reference_lines"]


CRITERIA = RESPONSE_CRITERIA
CATEGORIES = RESPONSE_CATEGORIES
COUNT_ANALYTES = ("ANC", "HGB", "PLT", "RETIC")
# transfusion products that break transfusion independence (analysis.response.transfusion_events)
TI_PRODUCTS = ("RBC", "PLT", "UNSPECIFIED")


# (analyte, operator, threshold); HGB for BSH is sex-specific (see normal_hgb); the severity
# thresholds and normal haemoglobin are rule settings (analysis/rules.py)
CR_RULES = {
    "NIH": (("ANC", ">=", 1.0), ("HGB", ">=", 100.0), ("PLT", ">=", 100.0)),
    "BSH": (("ANC", ">", 1.5), ("HGB", ">=", None), ("PLT", ">", 150.0)),
}


_OPS = {">=": "__ge__", ">": "__gt__", "<": "__lt__", "<=": "__le__"}
NEGATED_OP = {">=": "<", ">": "<=", "<": ">=", "<=": ">"}


def fmt_number(x: pl.Expr) -> pl.Expr:
    """A count as short text: 31 (not 31.0), 0.9, 0.42."""
    return (pl.when(x == x.round(0)).then(x.cast(pl.Int64).cast(pl.String))
            .otherwise(x.round(2).cast(pl.String)))


def threshold_expr(t: float | pl.Expr) -> pl.Expr:
    return fmt_number(t) if isinstance(t, pl.Expr) else pl.lit(f"{t:g}")


def compare_expr(col: str, op: str, t: float | pl.Expr) -> pl.Expr:
    """col op t, null when the count is missing."""
    rhs = t if isinstance(t, pl.Expr) else pl.lit(t)
    return getattr(pl.col(col.lower()), _OPS[op])(rhs)


def join_texts(parts: list[pl.Expr]) -> pl.Expr:
    return pl.concat_str(parts, separator=", ", ignore_nulls=True)


def normal_hgb(rules: Rules = DEFAULT_RULES) -> pl.Expr:
    """Normal haemoglobin for the patient's sex (the male value when sex is unknown)."""
    sex = pl.col("sex").cast(pl.String).str.to_uppercase().str.slice(0, 1)
    return (pl.when(sex == "F").then(pl.lit(rules.lln_hgb_female))
            .otherwise(pl.lit(rules.lln_hgb_male)))


def parse_days(days: str | Iterable[int] | None) -> tuple[int, ...] | None:
    """"28,90" or [28, 90] -> (28, 90); None or "" -> None."""
    if days is None:
        return None
    if isinstance(days, str):
        items = [d.strip() for d in days.replace(";", ",").split(",") if d.strip()]
        try:
            return tuple(sorted({int(d) for d in items})) or None
        except ValueError as err:
            raise ValueError(f"assessment days must be whole numbers, got {days!r}") from err
    return tuple(sorted({int(d) for d in days})) or None


def reference_lines(*, criteria: str = "NIH", retic_threshold: float | None = None,
                    rules: Rules | None = None) -> dict[str, list[tuple[float, str]]]:
    """analyte -> [(threshold, label)] that the criteria use, for reference lines on plots."""
    r = rules if rules is not None else DEFAULT_RULES
    retic = float(r.retic_threshold if retic_threshold is None else retic_threshold)
    sev = [("ANC", r.severe_anc, f"severe <{r.severe_anc:g}"),
           ("PLT", r.severe_plt, f"severe <{r.severe_plt:g}"),
           ("RETIC", retic, f"severe <{retic:g}")]
    out: dict[str, list[tuple[float, str]]] = {a: [(t, lab)] for a, t, lab in sev}
    out["ANC"].append((r.very_severe_anc, f"very severe <{r.very_severe_anc:g}"))
    name = criteria.upper()
    for a, op, t in CR_RULES.get(name, CR_RULES["NIH"]):
        if t is None:   # BSH haemoglobin: normal for sex
            out.setdefault(a, []).extend([
                (r.lln_hgb_female, f"{name} CR (women) >={r.lln_hgb_female:g}"),
                (r.lln_hgb_male, f"{name} CR (men) >={r.lln_hgb_male:g}")])
        else:
            out.setdefault(a, []).append((t, f"{name} CR {op}{t:g}"))
    return out


# Names under which recorded responses state their criteria, for like-with-like comparison.
CRITERIA_ALIASES: dict[str, str] = {
    "NIH": "NIH", "TOWNSLEY": "NIH", "NIH (TOWNSLEY)": "NIH", "NIH/TOWNSLEY": "NIH",
    "BSH": "BSH", "CAMITTA": "BSH", "MODIFIED CAMITTA": "BSH", "BSH/CAMITTA": "BSH",
    "BSH 2016": "BSH", "BSH 2024": "BSH",
}


def criteria_name(expr: pl.Expr) -> pl.Expr:
    """The canonical criteria (NIH/BSH) of a recorded `criteria` text; null when blank or
    not one of CRITERIA_ALIASES (a local scheme the derived rules do not implement)."""
    key = expr.cast(pl.String).str.strip_chars().str.to_uppercase()
    return key.replace_strict(CRITERIA_ALIASES, default=None, return_dtype=pl.String)
