"""Two patient groups compared within a day window, for every feature layer of a study.

Patient-level always (DESIGN.md section 3): each patient gives one value per feature and window,
from the sample closest to the window centre (baseline: the sample on or before day 0 closest to
day 0); cells or repeated samples are never pseudo-replicates. Optionally the value is the change
from the patient's baseline value.

Statistics made for tiny cohorts, all from analysis.stats (one implementation shared with the
Kinetics page, so the same patients give the same p everywhere):
- two-sided Mann-Whitney U (Mann & Whitney 1947). With `exact_max_n` (default 20) patients or
  fewer the p-value is exact: scipy's exact null distribution when there are no ties, else the
  exact permutation distribution of the rank sum over every split of the patients (Monte Carlo
  with 9,999 permutations from a fixed seed when there are more than 20,000 splits). Above:
  the normal approximation with tie and continuity correction, vectorised over features;
- presence/absence features (mutations): Fisher's exact test, effect = difference in proportions;
- effect sizes: Hedges' g (bias-corrected standardised mean difference; Hedges & Olkin 1985) and
  Cliff's delta (Cliff 1993), positive = higher in group A; log2 fold change of group means when
  every value is positive (difference of means on log2 layers such as NPX or log-CPM);
- Benjamini-Hochberg FDR over a stated family (column `fdr_family`): the features tested in the
  window, without the analytes that define the response groups (`group_defining_analytes`,
  marked "defines the groups": testing responders on the counts that made them responders is
  circular), or every window at once with the rule setting `fdr_across_windows`;
- fewer than `min_n` patients in a group (default 2; 3 for the strict rule): no test (p null,
  `reason` says why), values still returned; when even a perfect separation cannot reach
  p < 0.05 (e.g. 3 vs 2 patients: smallest exact p = 0.2) the `note` column says so.

Bulk RNA-seq can instead use pydeseq2 (Love et al., Genome Biol 2014; Muzellec et al.,
Bioinformatics 2023): Wald test on raw counts with design ~group, or, with change from baseline,
patients nested in groups with a group-specific time effect (DESeq2 vignette, "group-specific
condition effects, individuals nested within groups"), contrasting the change between groups.

The package, one job per module: `windows` (day windows and the sample that represents a
patient), `layers` (a study's feature layers as long values), `groups` (the two patient groups
and the features that define them), `picking` (per-patient values in a window), `comparison`
(the tests and the FDR family), `results` (the result table's columns), `deseq2` (pydeseq2 for
bulk RNA), `drilldown` (one feature across samples and windows).
"""

from analysis.differential.comparison import (
    compare,
    compare_matrix,
    compare_windows,
    comparison_table,
)
from analysis.differential.drilldown import feature_course, feature_windows
from analysis.differential.groups import (
    DEFINES_GROUPS,
    assign_groups,
    defining_features,
    group_values,
    grouping_columns,
)
from analysis.differential.layers import (
    LAYER_LABELS,
    LAYERS,
    available_layers,
    layer_values,
    value_label,
)
from analysis.differential.picking import patient_values
from analysis.differential.results import EXACT_MAX_N, MIN_N, RESULT_COLUMNS
from analysis.differential.windows import WINDOWS, Window, parse_window, window_values

__all__ = ["LAYERS", "LAYER_LABELS", "WINDOWS", "Window", "parse_window", "available_layers",
           "layer_values", "window_values", "assign_groups", "patient_values", "compare",
           "compare_windows", "defining_features", "DEFINES_GROUPS", "compare_matrix",
           "feature_course", "feature_windows", "comparison_table", "grouping_columns",
           "group_values", "value_label", "RESULT_COLUMNS", "MIN_N", "EXACT_MAX_N"]
