"""Column headers of lab exports: the analyte and unit a header names, and the role of the
other columns (patient, date, visit, ...).

- Units in a header: `HGB (g/L)`, `PLT [10^9/L]`, `WBC(×10^9/L)`, `血红蛋白（g/L）`, `CRP, mg/L`.
- A header names an analyte through the catalogue (canonical names and aliases: SDTM codes,
  analyser codes such as `NEUT#`/`NEUT%`, Chinese laboratory names), or through the study's
  own choices (`--analyte "X=ANC"`).
- A percentage is never an absolute count: a header or unit in % for a count analyte (`NEUT`
  with unit `%`, `中性粒细胞百分比`) names the percentage analyte (`NEUT_PCT`), or nothing.
- What cannot be placed is reported with the closest names (difflib) as a suggestion.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping

from data_loaders.analytes import ALIASES, CATALOGUE, Analyte, analyte_key, canonical_analyte
from data_loaders.units import CONVERSIONS, unit_key

__all__ = ["split_header", "resolve_analyte", "column_role", "suggest", "is_unit", "unit_known",
           "PERCENT_OF", "ROLE_NAMES"]

# A count analyte -> the analyte holding the same cells as a percentage.
PERCENT_OF = {"ANC": "NEUT_PCT", "ALC": "LYMPH_PCT", "AMC": "MONO_PCT", "EOS": "EOS_PCT",
              "BASO": "BASO_PCT", "RETIC": "RETIC_PCT"}
_PERCENT_WORDS = ("%", "百分比", "百分数", "比率", "PERCENT", "PCT")

_KNOWN_UNIT_KEYS = {unit_key(f) for _, f, _, _, _ in CONVERSIONS} | \
    {unit_key(t) for _, _, t, _, _ in CONVERSIONS}
_BRACKETS = re.compile(r"^(?P<name>.*?)\s*[\(\[{]\s*(?P<unit>[^()\[\]{}]+?)\s*[\)\]}]\s*$")
_COMMA = re.compile(r"^(?P<name>.*?)\s*[,;]\s*(?P<unit>\S+)\s*$")


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip()


def is_unit(text: str | None) -> bool:
    """True when `text` is a unit spelling of the conversion table (after folding)."""
    if text is None or not str(text).strip():
        return False
    return unit_key(_nfkc(text)) in _KNOWN_UNIT_KEYS


def split_header(header: str) -> tuple[str, str | None]:
    """(name, unit) of a header; unit None when the header carries none.

    A bracketed part is a unit when it is one (`HGB (g/L)`); other brackets stay in the name
    (`CD4 (abs)` is kept whole)."""
    text = _nfkc(header)
    for pattern in (_BRACKETS, _COMMA):
        m = pattern.match(text)
        if m and m.group("name").strip() and is_unit(m.group("unit")):
            return m.group("name").strip(), _unit_text(m.group("unit"))
    return text, None


def _unit_text(unit: str) -> str:
    u = _nfkc(unit).replace("×", "x")
    return u[1:] if u.lower().startswith("x10") else u


def resolve_analyte(name: str, unit: str | None, catalogue: Mapping[str, Analyte] | None = None,
                    *, chosen: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """The canonical analyte a column holds, and why (for the printed mapping).

    `chosen` holds the study's explicit choices (header or name -> analyte) and wins.
    Returns (None, reason) for a column that cannot be placed."""
    cat = CATALOGUE if catalogue is None else catalogue
    chosen = {analyte_key(k): v for k, v in (chosen or {}).items()}
    for text in (name,):
        if analyte_key(text) in chosen:
            target = chosen[analyte_key(text)]
            canon = canonical_analyte(target, dict(cat))
            if canon is None:
                return None, f"--analyte names {target!r}, which is not in the catalogue"
            return canon, "chosen"
    canon = canonical_analyte(name, dict(cat))
    if canon is None:
        # "NEUT #", "Neut Abs (#)": a trailing count or percent sign spelled apart
        squeezed = re.sub(r"\s+", "", _nfkc(name))
        canon = canonical_analyte(squeezed, dict(cat)) if squeezed != name else None
    if canon is None:
        return None, "not a known analyte"
    percent = (unit is not None and unit_key(unit) in ("%", "percent")) or any(
        w in _nfkc(name).upper() for w in _PERCENT_WORDS)
    if percent and cat[canon].unit != "%":
        pct = PERCENT_OF.get(canon)
        if pct and pct in cat:
            return pct, f"percentage of {canon}"
        return None, f"a percentage cannot be {canon} ({cat[canon].unit})"
    return canon, "catalogue"


def unit_known(analyte: str, unit: str | None,
               catalogue: Mapping[str, Analyte] | None = None) -> bool:
    """True when the unit table converts `unit` to the analyte's canonical unit (a blank unit
    means the canonical one)."""
    cat = CATALOGUE if catalogue is None else catalogue
    if not unit or analyte not in cat:
        return True
    canon = cat[analyte].unit
    key = unit_key(_nfkc(unit))
    if key == unit_key(canon):
        return True
    return any(unit_key(f) == key and t == canon and a in (None, analyte)
               for a, f, t, _, _ in CONVERSIONS)


def suggest(name: str, catalogue: Mapping[str, Analyte] | None = None, *, n: int = 3
            ) -> list[str]:
    """The closest canonical analytes for a name that could not be placed (difflib)."""
    cat = CATALOGUE if catalogue is None else catalogue
    key = analyte_key(split_header(name)[0])
    pool = {analyte_key(a): a for a in cat} | {k: v for k, v in ALIASES.items() if v in cat}
    hits = difflib.get_close_matches(key, list(pool), n=n * 3, cutoff=0.6)
    return list(dict.fromkeys(pool[h] for h in hits))[:n]


# Roles of the non-analyte columns of a lab sheet, by folded header.
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "subject_id": ("subject_id", "subjectid", "subject", "subjid", "usubjid", "patient",
                   "patient_id", "patientid", "participant_id", "pid", "id", "patient_no",
                   "patientno", "mrn", "患者编号", "受试者编号", "病人编号", "病历号", "住院号",
                   "患者id", "编号", "研究编号", "入组编号", "登记号", "病案号", "门诊号",
                   "就诊号", "id号"),
    "date": ("date", "sample_date", "collection_date", "collected", "visit_date", "lbdtc",
             "test_date", "report_date", "result_date", "draw_date", "日期", "采样日期",
             "检验日期", "采集日期", "报告日期", "检测日期", "送检日期", "采血日期",
             "start_date", "onset_date", "aestdtc", "assessment_date", "评估日期", "开始日期"),
    "end_date": ("end_date", "stop_date", "resolution_date", "aeendtc", "结束日期"),
    "visit": ("visit", "timepoint", "time_point", "visit_name", "visitname", "avisit",
              "访视", "时间点", "随访", "访视名称", "访视点"),
    "day": ("day", "study_day", "studyday", "dy", "lbdy", "ady", "days_post_infusion",
            "天数", "研究日"),
    "time": ("time", "sample_time", "collection_time", "时间", "采样时间", "检验时间",
             "报告时间", "送检时间", "采集时间"),
    "tissue": ("tissue", "specimen", "specimen_type", "sample_type", "matrix", "标本",
               "标本类型", "样本类型"),
    "sample_id": ("sample_id", "sampleid", "sample", "specimen_id", "barcode_id", "样本编号",
                  "标本编号", "样本号"),
    "infusion_date": ("infusion_date", "cart_date", "car_t_date", "infusion", "回输日期",
                      "输注日期", "细胞回输日期"),
    "analyte": ("analyte", "test", "testcd", "lbtestcd", "paramcd", "parameter", "item",
                "test_name", "项目", "检验项目", "检测项目", "项目名称"),
    "value": ("value", "result", "aval", "lbstresn", "lborres", "结果", "检验结果", "数值"),
    "unit": ("unit", "units", "lbstresu", "lborresu", "单位"),
    # identifying columns a study never imports
    "_identifying": ("name", "patient_name", "姓名", "患者姓名", "phone", "电话", "address",
                     "住址", "id_card", "身份证号"),
}
_ROLE_OF = {re.sub(r"[\s_\-.]", "", _nfkc(n).lower()): role
            for role, names in ROLE_NAMES.items() for n in names}


def column_role(header: str) -> str | None:
    """The role a non-analyte column plays (`subject_id`, `date`, `visit`, ...) or None."""
    key = re.sub(r"[\s_\-.]", "", split_header(header)[0].lower())
    return _ROLE_OF.get(key)
