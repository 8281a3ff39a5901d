"""SAA severity and haematological response at each assessment day, derived from blood counts.

Rules (DESIGN.md section 3); every threshold and window is a rule setting (analysis/rules.py,
docs/rules.md), so a study states its own in study.toml [rules]:

- Severity, modified Camitta (Camitta 1976; Bacigalupo 1988; BSH, Killick et al. 2016): severe
  when at least two of ANC < 0.5, PLT < 20 and RETIC < `retic_threshold` x10^9/L (60 with an
  automated count, BSH; 20 with the classic manual count, Camitta and the Chinese consensus);
  very severe when ANC < 0.2 as well. Baseline severity comes from analysis.baseline (counts
  before lymphodepletion, marrow cellularity).
- NIH (Townsley et al., N Engl J Med 2017;376:1540): CR = ANC >= 1.0, HGB >= 100 g/L and
  PLT >= 100; PR = counts no longer meet the severe criteria, not CR; NR = still severe.
- BSH / Camitta (Killick et al., Br J Haematol 2016;172:187): CR = HGB normal for sex (>= 130 g/L
  men, >= 120 g/L women; 130 when sex is unknown), ANC > 1.5 and PLT > 150; PR = transfusion
  independent and no longer severe; NR = still severe, or not transfusion independent.
- Not severe at baseline (NSAA): "no longer severe" means nothing, so PR follows the BSH
  non-severe rule (transfusion independence gained, or a lineage doubled or normalised, or
  Hb +30 g/L from < 60, ANC +0.5 from < 0.5, PLT +20 from < 20); unchanged counts are NR.
  `nonsevere_pr = "ne"` makes such assessments NE instead. A patient whose baseline severity
  cannot be judged (and has no recorded diagnosis) gets NE rather than PR, with the reason.

Transfusion independence = no RBC or platelet transfusion in the `ti_window` days up to and
including the assessment day. Each count is the value nearest to the assessment day within
+/- `count_window` days (ties: `count_tie`); repeated values on one day are averaged. A
transfusion- or G-CSF-supported count (analysis/support.py) never makes a criterion met: the
nearest unsupported count in the window is taken instead, else the supported one is shown and
counted as not met, and the rule text names it and what supported it. HSCT ends the CAR-T's
account: assessments on or after an HSCT are NE, and counts from an HSCT day on never decide
an assessment (not even as the nearest count of an earlier one). A missing count makes the
category NE only when the decision needs it. Every row carries the rule that decided it, with
the counts used and their days when they differ from the assessment day, e.g. "PR: no longer
severe (ANC 0.9 >= 0.5, PLT 31 (day 30) >= 20); not CR (HGB 85 < 100); transfusion-free 63 d".

The engine is vectorised: one candidate join for the counts and one for the transfusions.

The package, one job per module: `criteria` (the categories, criteria and their thresholds,
assessment days and reference lines), `inputs` (transfusions and assessment days from a study),
`engine` (the vectorised assessment), `tables` (the study-level derived tables),
`recorded` (derived against recorded responses).
"""

from analysis.response.criteria import (
    CATEGORIES,
    CRITERIA,
    CRITERIA_ALIASES,
    TI_PRODUCTS,
    criteria_name,
    parse_days,
    reference_lines,
)
from analysis.response.engine import assess_responses
from analysis.response.inputs import (
    assessment_days,
    follow_up_end,
    hsct_per_patient,
    transfusion_events,
)
from analysis.response.recorded import (
    compare_recorded,
    comparison_summary,
    recorded_responses,
    response_comparison,
)
from analysis.response.tables import (
    baseline_severity,
    best_of,
    best_response,
    counts_before_hsct,
    derived_responses,
    label_timepoints,
)
from analysis.vocab import LANDMARKS

__all__ = ["CRITERIA", "LANDMARKS", "CATEGORIES", "TI_PRODUCTS", "assessment_days",
           "assess_responses", "derived_responses", "best_of", "best_response", "compare_recorded",
           "response_comparison", "comparison_summary", "criteria_name", "CRITERIA_ALIASES",
           "baseline_severity", "transfusion_events", "parse_days", "follow_up_end",
           "hsct_per_patient", "reference_lines", "label_timepoints", "recorded_responses",
           "counts_before_hsct"]
