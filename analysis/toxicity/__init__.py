"""Toxicity after CAR-T: CRS and ICANS (ASTCT 2019), cytokine peaks and adverse events.

Recorded grades come from `events` (categories crs and icans; grade per the ASTCT consensus of
Lee et al., Biol Blood Marrow Transplant 2019;25:625-638). Where daily vitals are given, the
CRS grade is derived per ASTCT and compared with the recorded one:

- fever: TEMP >= 38.0 C (the day's maximum) is required for any grade;
- hypotension: SBP < 90 mmHg without vasopressors = grade 2, one vasopressor (VASOPRESSORS ==
  1) = grade 3, two or more = grade 4;
- hypoxia: oxygen by low-flow nasal cannula (0 < O2_LPM <= 6 L/min) = grade 2, high-flow
  (O2_LPM > 6) = grade 3;
- grade = the worse of hypotension and hypoxia, given fever; fever alone = grade 1.

Only where CRS can be: vitals are graded inside the CRS window (infusion, day 0, to the rule
setting `crs_window_end`, default day 14, and `crs_episode_margin` days around each recorded CRS
episode) and never on a day of a documented infection (events category infection, day to
end_day) without a recorded CRS episode on that day; a fever then belongs to the infection
(febrile neutropenia, CMV). `crs_daily` says for each day why it was or was not graded.

Masked fever (ASTCT 2019): "in patients who have CRS then receive antipyretic or anticytokine
therapy such as tocilizumab or steroids, fever is no longer required to grade subsequent CRS
severity". With `crs_masked_fever` (on by default), once a patient has CRS (a febrile graded
day, or a recorded episode) and then gets tocilizumab or a corticosteroid (medication events:
`product` tocilizumab / corticosteroid, or the class derived from the term), the following
graded days are graded on hypotension and hypoxia without fever. `crs_fever_carry_days`
(default 0) lets a febrile day count for that many following days (antipyretics).

Not derivable from these vitals (documented, not guessed): positive-pressure ventilation
(CPAP, BiPAP, intubation = hypoxia grade 4) and vasopressin as a separate agent. Thresholds
(fever 38.0 C, SBP 90 mmHg, low-flow 6 L/min) are rule settings with these defaults.

Adverse events are summarised per term by each patient's worst grade (CTCAE v5 grades as
recorded), with counts and percentages of all patients in the study.

The package, one job per module: `episodes` (recorded CRS and ICANS), `astct` (the ASTCT grade
from daily vitals), `cytokines` (cytokine peaks), `adverse_events` (adverse events and
infections), `tables` (the study-level derived tables).
"""

from analysis.toxicity.adverse_events import adverse_event_summary, infections
from analysis.toxicity.astct import (
    FEVER_C,
    HYPOTENSION_SBP,
    LOW_FLOW_MAX_LPM,
    MASKING_DRUGS,
    VITALS,
    astct_comparison,
    astct_daily_grades,
    masking_drugs,
)
from analysis.toxicity.cytokines import CYTOKINES, INFLAMMATION_MARKERS, cytokine_peaks
from analysis.toxicity.episodes import (
    crs_summary,
    grade_incidence,
    onset_duration,
    toxicity_episodes,
)
from analysis.toxicity.tables import (
    adverse_events_table,
    astct_comparison_table,
    crs_daily_table,
    crs_table,
    cytokine_peaks_table,
)
from analysis.vocab import AE_CATEGORIES

__all__ = ["CYTOKINES", "INFLAMMATION_MARKERS", "VITALS", "FEVER_C", "HYPOTENSION_SBP",
           "LOW_FLOW_MAX_LPM", "AE_CATEGORIES", "toxicity_episodes", "crs_summary", "crs_table",
           "grade_incidence", "onset_duration", "astct_daily_grades", "astct_comparison",
           "cytokine_peaks", "cytokine_peaks_table", "adverse_event_summary",
           "adverse_events_table", "infections", "crs_daily_table", "astct_comparison_table",
           "masking_drugs", "MASKING_DRUGS"]
