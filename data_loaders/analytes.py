"""The analyte catalogue: canonical names, panels and units (DESIGN.md section 2).

Every numeric time series lives in `measurements` under one canonical analyte name. Files use
many names for the same test (SDTM LBTESTCD codes, lab-report labels); `ALIASES` maps them.
A study can declare analytes of its own in `study.toml` (`[analytes.NAME] panel=..., unit=...`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Analyte", "CATALOGUE", "ALIASES", "PANELS", "canonical_analyte", "catalogue_with"]


@dataclass(frozen=True)
class Analyte:
    name: str
    panel: str
    unit: str
    label: str


PANELS = ("cbc", "chemistry", "cytokine", "car_t", "immunophenotype", "vitals", "neuro")

_ROWS = [
    # cbc
    ("WBC", "cbc", "10^9/L", "White blood cells"),
    ("ANC", "cbc", "10^9/L", "Absolute neutrophil count"),
    ("ALC", "cbc", "10^9/L", "Absolute lymphocyte count"),
    ("AMC", "cbc", "10^9/L", "Absolute monocyte count"),
    ("PLT", "cbc", "10^9/L", "Platelets"),
    ("RETIC", "cbc", "10^9/L", "Reticulocytes (absolute)"),
    ("HGB", "cbc", "g/L", "Haemoglobin"),
    ("RBC", "cbc", "10^12/L", "Red blood cells"),
    ("HCT", "cbc", "%", "Haematocrit"),
    ("MCV", "cbc", "fL", "Mean corpuscular volume"),
    ("EOS", "cbc", "10^9/L", "Eosinophils"),
    ("BASO", "cbc", "10^9/L", "Basophils"),
    # chemistry
    ("CRP", "chemistry", "mg/L", "C-reactive protein"),
    ("FERRITIN", "chemistry", "ng/mL", "Ferritin"),
    ("LDH", "chemistry", "U/L", "Lactate dehydrogenase"),
    ("ALT", "chemistry", "U/L", "Alanine aminotransferase"),
    ("AST", "chemistry", "U/L", "Aspartate aminotransferase"),
    ("ALP", "chemistry", "U/L", "Alkaline phosphatase"),
    ("GGT", "chemistry", "U/L", "Gamma-glutamyl transferase"),
    ("BILI", "chemistry", "umol/L", "Bilirubin"),
    ("CREAT", "chemistry", "umol/L", "Creatinine"),
    ("ALB", "chemistry", "g/L", "Albumin"),
    ("FIBRINO", "chemistry", "g/L", "Fibrinogen"),
    ("K", "chemistry", "mmol/L", "Potassium"),
    ("SODIUM", "chemistry", "mmol/L", "Sodium"),
    # cytokines
    ("IL6", "cytokine", "pg/mL", "Interleukin-6"),
    ("IFNG", "cytokine", "pg/mL", "Interferon gamma"),
    ("IL10", "cytokine", "pg/mL", "Interleukin-10"),
    ("IL2", "cytokine", "pg/mL", "Interleukin-2"),
    ("TNFA", "cytokine", "pg/mL", "Tumour necrosis factor alpha"),
    ("IL2RA", "cytokine", "pg/mL", "Soluble IL-2 receptor alpha (sIL-2R)"),
    # CAR-T detection
    ("CAR_QPCR", "car_t", "copies/ug gDNA", "CAR transgene (qPCR)"),
    ("CAR_PCT", "car_t", "%", "CAR+ cells, % of CD3+ (flow)"),
    ("CAR_ABS", "car_t", "cells/uL", "CAR+ cells (flow, absolute)"),
    # immunophenotype
    ("CD7NEG_T_PCT", "immunophenotype", "%", "CD7-negative T cells, % of CD3+"),
    ("NK_ABS", "immunophenotype", "cells/uL", "NK cells (absolute)"),
    ("CD4_ABS", "immunophenotype", "cells/uL", "CD4+ T cells (absolute)"),
    ("CD8_ABS", "immunophenotype", "cells/uL", "CD8+ T cells (absolute)"),
    ("B_ABS", "immunophenotype", "cells/uL", "B cells (absolute)"),
    ("T_ABS", "immunophenotype", "cells/uL", "T cells (absolute)"),
    ("TREG_PCT", "immunophenotype", "%", "Regulatory T cells, % of CD4+"),
    # vitals for ASTCT CRS grading
    ("TEMP", "vitals", "C", "Body temperature"),
    ("SBP", "vitals", "mmHg", "Systolic blood pressure"),
    ("DBP", "vitals", "mmHg", "Diastolic blood pressure"),
    ("HR", "vitals", "beats/min", "Heart rate"),
    ("SPO2", "vitals", "%", "Oxygen saturation"),
    ("O2_LPM", "vitals", "L/min", "Supplemental oxygen flow (0 = room air)"),
    ("VASOPRESSORS", "vitals", "count", "Vasopressor agents in use"),
    # neurotoxicity
    ("ICE", "neuro", "points", "ICE encephalopathy score (0-10)"),
]

CATALOGUE: dict[str, Analyte] = {r[0]: Analyte(*r) for r in _ROWS}

# Alias (upper-case, spaces/dashes/underscores removed) -> canonical name.
_ALIAS_ROWS = {
    "ANC": ["NEUT", "NEUTROPHILS", "ABSNEUT", "ABSOLUTENEUTROPHILCOUNT", "NEUTABS", "NEU"],
    "ALC": ["LYM", "LYMPH", "LYMPHOCYTES", "ABSLYMPH", "LYMABS"],
    "AMC": ["MONO", "MONOCYTES", "MONOABS"],
    "PLT": ["PLAT", "PLATELETS", "PLATELET"],
    "RETIC": ["RETI", "RETICULOCYTES", "RETABS", "RETICABS"],
    "HGB": ["HB", "HEMOGLOBIN", "HAEMOGLOBIN"],
    "WBC": ["LEUKOCYTES", "LEUK", "WHITEBLOODCELLS"],
    "RBC": ["ERYTHROCYTES", "ERY"],
    "CRP": ["CREACTIVEPROTEIN"],
    "FERRITIN": ["FERRITN", "FERR"],
    "LDH": ["LACTATEDEHYDROGENASE"],
    "BILI": ["BILIRUBIN", "TBILI"],
    "CREAT": ["CREATININE"],
    "ALB": ["ALBUMIN"],
    "SODIUM": ["NA"],
    "IL6": ["INTERLEUKIN6"],
    "IFNG": ["IFNGAMMA", "IFNγ", "INTERFERONGAMMA"],
    "IL10": ["INTERLEUKIN10"],
    "IL2": ["INTERLEUKIN2"],
    "TNFA": ["TNF", "TNFALPHA", "TNFα"],
    "IL2RA": ["SIL2R", "SIL2RA", "CD25", "SCD25"],
    "TEMP": ["TEMPERATURE", "BODYTEMP"],
    "SBP": ["SYSBP", "SYSTOLICBP"],
    "DBP": ["DIABP", "DIASTOLICBP"],
    "HR": ["PULSE", "HEARTRATE"],
    "SPO2": ["OXYSAT", "SAO2", "O2SAT"],
}
ALIASES: dict[str, str] = {}
for _canon, _names in _ALIAS_ROWS.items():
    for _n in _names:
        ALIASES[_n] = _canon


def _key(name: str) -> str:
    return "".join(ch for ch in name.upper() if ch not in " -_.")


def canonical_analyte(name: str, catalogue: dict[str, Analyte] | None = None) -> str | None:
    """The canonical name for `name` (case, dashes and spaces ignored), or None if unknown."""
    cat = CATALOGUE if catalogue is None else catalogue
    if name in cat:
        return name
    up = name.strip().upper()
    if up in cat:
        return up
    key = _key(name)
    for canon in cat:
        if _key(canon) == key:
            return canon
    return ALIASES.get(key)


def catalogue_with(extra: dict[str, dict]) -> dict[str, Analyte]:
    """The catalogue plus a study's own analytes from `study.toml` `[analytes.NAME]`."""
    cat = dict(CATALOGUE)
    for name, spec in extra.items():
        cat[name] = Analyte(name, str(spec.get("panel", "other")), str(spec.get("unit", "")),
                            str(spec.get("label", name)))
    return cat
