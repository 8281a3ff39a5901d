"""The canonical tables of DESIGN.md section 2: columns, types, keys and accepted aliases.

This is the one place that says what a study table looks like; the loader, the CSV templates
offered on the Data & quality page and docs/data-format.md all follow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from analysis.vocab import EVENT_CATEGORIES, RESPONSE_CATEGORIES

__all__ = ["TableSpec", "TABLES", "EVENT_CATEGORIES", "RESPONSES", "COLUMN_ALIASES",
           "TABULAR_SUFFIXES", "MEDICATION_CLASSES", "medication_class", "medication_class_expr",
           "template_frame"]

# str, float, int, date, bool
_TYPES = {"str": pl.String, "float": pl.Float64, "int": pl.Int64, "date": pl.Date,
          "bool": pl.Boolean}


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: dict[str, str]
    optional: dict[str, str] = field(default_factory=dict)
    key: tuple[str, ...] = ()           # duplicate detection
    description: str = ""
    by_subject: bool = True             # keyed by subject_id (else by sample_id)

    @property
    def columns(self) -> dict[str, str]:
        return {**self.required, **self.optional}

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c: _TYPES[t] for c, t in self.columns.items()}


TABLES: dict[str, TableSpec] = {
    "patients": TableSpec(
        "patients",
        {"subject_id": "str"},
        {"age": "float", "sex": "str", "diagnosis": "str", "infusion_date": "date",
         "dose_per_kg": "float", "weight_kg": "float", "prior_therapy": "str",
         "disease_duration_months": "float", "marrow_cellularity_pct": "float",
         "marrow_residual_pct": "float", "pnh_clone_pct": "float", "last_contact_day": "int", "death_day": "int",
         "progression_day": "int", "hsct_day": "int", "response_override": "str"},
        key=("subject_id",),
        description="One row per patient: demographics, disease, dose and outcome days.",
    ),
    "measurements": TableSpec(
        "measurements",
        {"subject_id": "str", "day": "int", "analyte": "str", "value": "float", "unit": "str"},
        {"panel": "str", "lloq": "float", "tissue": "str", "sample_id": "str", "time": "str"},
        key=("subject_id", "day", "analyte", "tissue", "time", "specimen"),
        description="Every numeric time series: blood counts, chemistry, cytokines, CAR-T, "
                    "immunophenotype, vitals.",
    ),
    "events": TableSpec(
        "events",
        {"subject_id": "str", "day": "int", "category": "str"},
        {"end_day": "int", "term": "str", "grade": "int", "product": "str", "units": "float"},
        key=("subject_id", "day", "category", "term", "product"),
        description="Clinical events: infusion, lymphodepletion, transfusions, CRS, ICANS, "
                    "infections, adverse events, growth factors, HSCT, progression, death, "
                    "concomitant medications.",
    ),
    "responses": TableSpec(
        "responses",
        {"subject_id": "str", "day": "int", "response": "str"},
        {"criteria": "str", "assessor": "str"},
        key=("subject_id", "day", "criteria", "assessor"),
        description="Recorded (investigator) response assessments: CR, PR, NR (NE allowed).",
    ),
    "samples": TableSpec(
        "samples",
        {"sample_id": "str", "subject_id": "str", "day": "int"},
        {"timepoint": "str", "tissue": "str", "assay": "str", "file": "str"},
        key=("sample_id",),
        description="Biospecimens: which patient and day each omics sample comes from.",
    ),
    "proteomics": TableSpec(
        "proteomics",
        {"sample_id": "str", "feature": "str", "value": "float"},
        {"uniprot": "str", "lod": "float", "panel": "str", "qc_warning": "str"},
        key=("sample_id", "feature", "panel"),
        description="Protein levels (e.g. Olink NPX, log2 scale), one row per protein and sample.",
        by_subject=False,
    ),
    "mutations": TableSpec(
        "mutations",
        {"sample_id": "str", "gene": "str", "vaf": "float"},
        {"variant": "str", "depth": "int", "classification": "str"},
        key=("sample_id", "gene", "variant"),
        description="Somatic variants with variant allele fraction (0-1) per sample.",
        by_subject=False,
    ),
    "tcr": TableSpec(
        "tcr",
        {"sample_id": "str", "junction_aa": "str", "count": "int"},
        {"v_call": "str", "j_call": "str", "productive": "bool", "cell_id": "str",
         "locus": "str"},
        key=(),
        description="T-cell receptor clonotypes (CDR3 amino acids) with counts per sample.",
        by_subject=False,
    ),
}

# rna_counts is a wide matrix (gene column + one integer column per sample_id): its own reader.
RNA_SPEC = TableSpec(
    "rna_counts", {"gene": "str"}, {},
    description="Bulk RNA-seq raw counts: a gene column, then one integer column per sample_id.",
    by_subject=False,
)


# Concomitant medications (category "medication"): `term` is the drug as recorded, `product` its
# class, one of these. The class comes from the term when `product` is empty (patterns below,
# first match wins; generic and common brand names, case-insensitive). G-CSF may also be
# recorded as category growth_factor; rules treat both as G-CSF exposure.
MEDICATION_CLASSES = ("tocilizumab", "corticosteroid", "ciclosporin", "tpo_ra", "g_csf",
                      "anti_infective", "other")
_MEDICATION_PATTERNS: tuple[tuple[str, str], ...] = (
    ("tocilizumab", r"tocilizumab|actemra|roactemra"),
    ("corticosteroid", r"dexamethason|methylpred|prednis|hydrocortison|\bsolu-?medrol|"
                       r"budesonid|\bsteroid|corticosteroid"),
    ("ciclosporin", r"ciclosporin|cyclosporin|\bcsa\b|neoral|sandimmun"),
    ("tpo_ra", r"eltrombopag|romiplostim|avatrombopag|hetrombopag|lusutrombopag|promacta|"
               r"revolade|nplate|doptelet|\btpo[- ]?ra\b|thrombopoietin"),
    ("g_csf", r"filgrastim|lenograstim|pegfilgrastim|g-?csf|neupogen|granocyte|neulasta"),
    ("anti_infective", r"cillin|cef|penem|mycin|micin|floxacin|vancomycin|linezolid|"
                       r"tazobactam|sulfamethoxazole|trimethoprim|co-?trimoxazole|"
                       r"metronidazole|doxycycline|aciclovir|acyclovir|valaciclovir|"
                       r"valacyclovir|ganciclovir|valganciclovir|foscarnet|cidofovir|letermovir|"
                       r"oseltamivir|remdesivir|conazole|fungin|amphotericin|pentamidine|"
                       r"atovaquone|antibiotic|antibacterial|antiviral|antifungal|antimycotic|"
                       r"anti-?infective"),
)


def medication_class(term: str | None) -> str:
    """The drug class of a recorded medication term (one of MEDICATION_CLASSES; "other" when no
    pattern matches)."""
    import re

    text = (term or "").lower()
    for cls, pattern in _MEDICATION_PATTERNS:
        if re.search(pattern, text):
            return cls
    return "other"


def medication_class_expr(term: pl.Expr) -> pl.Expr:
    """`medication_class` as a polars expression over a column of terms."""
    low = term.str.to_lowercase()
    expr = pl.lit("other")
    for cls, pattern in reversed(_MEDICATION_PATTERNS):
        expr = pl.when(low.str.contains(pattern)).then(pl.lit(cls)).otherwise(expr)
    return expr


RESPONSES = RESPONSE_CATEGORIES

# Alternative column names (folded to lower case, spaces and dashes as underscores).
COLUMN_ALIASES: dict[str, str] = {
    "subject": "subject_id", "subjid": "subject_id", "usubjid": "subject_id",
    "patient": "subject_id", "patient_id": "subject_id", "participant_id": "subject_id",
    "study_day": "day", "studyday": "day", "dy": "day",
    "result": "value", "aval": "value", "npx": "value",
    "test": "analyte", "testcd": "analyte", "paramcd": "analyte", "parameter": "analyte",
    "units": "unit", "event": "category", "sample": "sample_id", "sampleid": "sample_id",
    "protein": "feature", "assay_name": "feature", "symbol": "gene", "hugo_symbol": "gene",
    "cdr3_aa": "junction_aa", "cdr3": "junction_aa", "duplicate_count": "count",
    "clone_count": "count", "stop_day": "end_day", "start_day": "day",
}

TABULAR_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".xlsx", ".xls")


def template_frame(table: str) -> pl.DataFrame:
    """An empty frame with every column of `table`, for the CSV templates users download."""
    spec = RNA_SPEC if table == "rna_counts" else TABLES[table]
    if table == "rna_counts":
        return pl.DataFrame(schema={"gene": pl.String, "SAMPLE_1": pl.Int64})
    schema = spec.polars_schema()
    if spec.by_subject and table != "patients":
        schema = {**schema, "date": pl.Date}
    return pl.DataFrame(schema=schema)
