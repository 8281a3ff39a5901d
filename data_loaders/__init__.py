"""Study files -> validated, read-only `Study` (no streamlit here).

    from data_loaders import load_study
    study = load_study("sample_data/demo")
    study.report.summary(), study.measurements, study.series(analytes=["ANC"])
"""

from data_loaders.errors import Finding, StudyError, ValidationReport
from data_loaders.loader import load_study
from data_loaders.study import TABLE_NAMES, SourceInfo, Study, fingerprint

__all__ = ["Finding", "StudyError", "ValidationReport", "load_study", "Study", "SourceInfo",
           "TABLE_NAMES", "fingerprint"]
