"""The analyte catalogue: canonical names, panels and units (DESIGN.md section 2).

Every numeric time series lives in `measurements` under one canonical analyte name. Files use
many names for the same test (SDTM LBTESTCD codes, lab-report labels); `ALIASES` maps them.
A study can declare analytes of its own in `study.toml` (`[analytes.NAME] panel=..., unit=...`).
"""

from __future__ import annotations

import unicodedata
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
    # differential percentages (analysers report both; a percentage is never an absolute count)
    ("NEUT_PCT", "cbc", "%", "Neutrophils, % of leukocytes"),
    ("LYMPH_PCT", "cbc", "%", "Lymphocytes, % of leukocytes"),
    ("MONO_PCT", "cbc", "%", "Monocytes, % of leukocytes"),
    ("EOS_PCT", "cbc", "%", "Eosinophils, % of leukocytes"),
    ("BASO_PCT", "cbc", "%", "Basophils, % of leukocytes"),
    ("RETIC_PCT", "cbc", "%", "Reticulocytes, % of red cells"),
    ("MCH", "cbc", "pg", "Mean corpuscular haemoglobin"),
    ("MCHC", "cbc", "g/L", "Mean corpuscular haemoglobin concentration"),
    ("RDW", "cbc", "%", "Red cell distribution width (CV)"),
    ("MPV", "cbc", "fL", "Mean platelet volume"),
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

# Alias -> canonical name. Keys are folded by `analyte_key` (NFKC, upper case, spaces, dashes,
# underscores and dots removed), so "Neut-Abs", "neut abs" and "NEUT_ABS" are one alias.
# Groups: report labels; SDTM LBTESTCD / VSTESTCD (CDISC controlled terminology); analyser
# codes (Sysmex XN, Beckman Coulter DxH, Abbott Alinity hq, Mindray BC: "#" absolute, "%"
# percentage); common Chinese laboratory-report names (as printed by hospital LIS exports).
_ALIAS_ROWS = {
    "ANC": ["NEUT", "NEUTROPHILS", "ABSNEUT", "ABSOLUTENEUTROPHILCOUNT", "NEUTABS", "NEU",
            "NEUT#", "NE#", "NEU#", "GRAN#", "ANEU", "NEUTSG",
            "中性粒细胞绝对值", "中性粒细胞计数", "中性粒细胞数", "中性粒细胞", "中性粒细胞绝对数"],
    "ALC": ["LYM", "LYMPH", "LYMPHOCYTES", "ABSLYMPH", "LYMABS", "LYMPH#", "LYM#", "LY#",
            "淋巴细胞绝对值", "淋巴细胞计数", "淋巴细胞数", "淋巴细胞", "淋巴细胞绝对数"],
    "AMC": ["MONO", "MONOCYTES", "MONOABS", "MONO#", "MON#", "MO#",
            "单核细胞绝对值", "单核细胞计数", "单核细胞", "单核细胞绝对数"],
    "EOS": ["EOSINOPHILS", "EO#", "EOS#", "嗜酸性粒细胞绝对值", "嗜酸性粒细胞计数",
            "嗜酸性粒细胞"],
    "BASO": ["BASOPHILS", "BASO#", "BA#", "嗜碱性粒细胞绝对值", "嗜碱性粒细胞计数",
             "嗜碱性粒细胞"],
    "NEUT_PCT": ["NEUT%", "NE%", "NEU%", "GRAN%", "NEUTLE", "NEUTROPHILSPCT",
                 "中性粒细胞百分比", "中性粒细胞百分数", "中性粒细胞比率", "中性粒细胞%"],
    "LYMPH_PCT": ["LYMPH%", "LYM%", "LY%", "LYMLE", "LYMPHOCYTESPCT",
                  "淋巴细胞百分比", "淋巴细胞百分数", "淋巴细胞比率", "淋巴细胞%"],
    "MONO_PCT": ["MONO%", "MON%", "MO%", "MONOLE", "单核细胞百分比", "单核细胞百分数",
                 "单核细胞比率", "单核细胞%"],
    "EOS_PCT": ["EO%", "EOS%", "EOSLE", "嗜酸性粒细胞百分比", "嗜酸性粒细胞百分数",
                "嗜酸性粒细胞%"],
    "BASO_PCT": ["BASO%", "BA%", "BASOLE", "嗜碱性粒细胞百分比", "嗜碱性粒细胞百分数",
                 "嗜碱性粒细胞%"],
    "PLT": ["PLAT", "PLATELETS", "PLATELET", "PLTI", "PLTF", "PLTO", "血小板计数", "血小板",
            "血小板数"],
    "RETIC": ["RETI", "RETICULOCYTES", "RETABS", "RETICABS", "RET#", "RETIC#", "RETC#",
              "网织红细胞绝对值", "网织红细胞计数", "网织红细胞数", "网织红细胞"],
    "RETIC_PCT": ["RET%", "RETIC%", "RETC%", "RETIRBC", "网织红细胞百分比", "网织红细胞百分数",
                  "网织红细胞比率", "网织红细胞%"],
    "HGB": ["HB", "HEMOGLOBIN", "HAEMOGLOBIN", "血红蛋白", "血红蛋白浓度", "血色素"],
    "WBC": ["LEUKOCYTES", "LEUK", "WHITEBLOODCELLS", "白细胞", "白细胞计数", "白细胞数"],
    "RBC": ["ERYTHROCYTES", "ERY", "RBCS", "红细胞", "红细胞计数", "红细胞数"],
    "HCT": ["HEMATOCRIT", "HAEMATOCRIT", "PCV", "红细胞压积", "红细胞比容", "血细胞比容"],
    "MCV": ["平均红细胞体积"],
    "MCH": ["平均红细胞血红蛋白含量", "平均血红蛋白含量"],
    "MCHC": ["平均红细胞血红蛋白浓度", "平均血红蛋白浓度"],
    "RDW": ["RDWCV", "红细胞分布宽度", "红细胞体积分布宽度"],
    "MPV": ["平均血小板体积"],
    "CRP": ["CREACTIVEPROTEIN", "HSCRP", "C反应蛋白", "超敏C反应蛋白", "C-反应蛋白"],
    "FERRITIN": ["FERRITN", "FERR", "铁蛋白", "血清铁蛋白"],
    "LDH": ["LACTATEDEHYDROGENASE", "乳酸脱氢酶"],
    "ALT": ["SGPT", "GPT", "谷丙转氨酶", "丙氨酸氨基转移酶", "丙氨酸转氨酶"],
    "AST": ["SGOT", "GOT", "谷草转氨酶", "天门冬氨酸氨基转移酶", "天冬氨酸氨基转移酶"],
    "ALP": ["碱性磷酸酶"],
    "GGT": ["Γ谷氨酰转移酶", "谷氨酰转移酶", "谷氨酰转肽酶", "Γ谷氨酰转肽酶"],
    "BILI": ["BILIRUBIN", "TBILI", "TBIL", "总胆红素"],
    "CREAT": ["CREATININE", "CREA", "肌酐"],
    "ALB": ["ALBUMIN", "白蛋白"],
    "FIBRINO": ["FIBRINOGEN", "FIB", "纤维蛋白原"],
    "K": ["POTASSIUM", "钾"],
    "SODIUM": ["NA", "钠"],
    "IL6": ["INTERLEUKIN6", "IL-6", "白细胞介素6", "白介素6"],
    "IFNG": ["IFNGAMMA", "IFNγ", "INTERFERONGAMMA", "Γ干扰素", "干扰素Γ"],
    "IL10": ["INTERLEUKIN10", "白细胞介素10", "白介素10"],
    "IL2": ["INTERLEUKIN2", "白细胞介素2", "白介素2"],
    "TNFA": ["TNF", "TNFALPHA", "TNFα", "肿瘤坏死因子α", "肿瘤坏死因子"],
    "IL2RA": ["SIL2R", "SIL2RA", "CD25", "SCD25", "可溶性白细胞介素2受体"],
    "TEMP": ["TEMPERATURE", "BODYTEMP", "体温"],
    "SBP": ["SYSBP", "SYSTOLICBP", "收缩压"],
    "DBP": ["DIABP", "DIASTOLICBP", "舒张压"],
    "HR": ["PULSE", "HEARTRATE", "心率", "脉搏"],
    "SPO2": ["OXYSAT", "SAO2", "O2SAT", "血氧饱和度"],
}


def analyte_key(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).upper()
    return "".join(ch for ch in text if ch not in " -_.")


ALIASES: dict[str, str] = {}
for _canon, _names in _ALIAS_ROWS.items():
    for _n in _names:
        ALIASES[analyte_key(_n)] = _canon


def canonical_analyte(name: str, catalogue: dict[str, Analyte] | None = None) -> str | None:
    """The canonical name for `name` (case, dashes and spaces ignored), or None if unknown."""
    cat = CATALOGUE if catalogue is None else catalogue
    if name in cat:
        return name
    up = name.strip().upper()
    if up in cat:
        return up
    key = analyte_key(name)
    for canon in cat:
        if analyte_key(canon) == key:
            return canon
    return ALIASES.get(key)


def catalogue_with(extra: dict[str, dict]) -> dict[str, Analyte]:
    """The catalogue plus a study's own analytes from `study.toml` `[analytes.NAME]`."""
    cat = dict(CATALOGUE)
    for name, spec in extra.items():
        cat[name] = Analyte(name, str(spec.get("panel", "other")), str(spec.get("unit", "")),
                            str(spec.get("label", name)))
    return cat
