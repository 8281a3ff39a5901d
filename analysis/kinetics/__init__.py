"""CAR-T cellular kinetics: expansion, persistence and exposure-response (DESIGN.md section 3).

Non-compartmental parameters per patient and assay (CAR transgene qPCR, CAR+ cells by flow):
Cmax and Tmax (highest quantifiable value on or after day 0), AUC0-28 by the linear-up/log-down
trapezoidal rule (log trapezoids where the level falls between two positive values, linear
otherwise; a window end between two samples is interpolated the same way), Tlast (last day
after infusion with a value >= LLOQ), fold expansion over baseline (last value on or before day
0) and detectability at the landmarks D28, M3, M6 and M12. This follows the usual NCA
conventions (e.g. Gabrielsson & Weiner, Pharmacokinetic and Pharmacodynamic Data Analysis, 5th
ed., ch. 2) as applied to CAR-T cellular kinetics (Stein et al., CPT Pharmacometrics Syst
Pharmacol 2019;8:285). Edges, each a rule setting or said in a note column:

- below the LLOQ is decided per replicate before replicates are averaged
  (`replicate_quantifiable_share`);
- fold expansion is not defined when the baseline is below the LLOQ (`fold_note`);
- the AUC starts at day 0: without a usable day-0 value it is not computed unless
  `auc_impute_day0` sets day 0 to 0 (PKNCA's impute = "start_conc0");
- group summaries count non-expanders and say how they enter the geometric mean
  (`kinetics_nonexpanders`).

Values below the lower limit of quantification (BLQ: value < lloq, or value <= 0) are handled by
position in the series after infusion: before the first quantifiable value ("leading"), between
quantifiable values ("middle"), after the last one ("trailing"). Each position has a policy:
"zero", "drop" or "half_lloq". The default (leading 0, middle dropped, trailing 0) is the common
NCA convention. Summaries use the geometric mean and geometric CV% = sqrt(exp(sd_log^2) - 1) *
100. Tests are patient-level and come from analysis.stats (the Compare page uses the same):
Mann-Whitney for response groups (exact, or exact permutation with ties, up to
`MWU_EXACT_MAX_N` patients; normal approximation above), Spearman with a permutation p for
ordinal CRS grade (t approximation above `SPEARMAN_PERMUTATION_MAX_N` pairs).

The package, one job per module: `series` (the kinetic series of a study, prepared),
`nca` (non-compartmental parameters), `summaries` (group summaries and curves), `concordance`
(qPCR against flow), `exposure` (exposure against response and CRS).
"""

from analysis.kinetics.concordance import (
    Correlation,
    RepeatedConcordance,
    concordance,
    repeated_correlation,
    spearman,
)
from analysis.kinetics.exposure import exposure_response, exposure_tests
from analysis.kinetics.nca import before_hsct, kinetic_parameters, kinetics_table
from analysis.kinetics.series import (
    ASSAYS,
    BLQ_POLICIES,
    CD7_READOUTS,
    KINETICS_COLUMNS,
    MWU_EXACT_MAX_N,
    NONEXPANDER_POLICIES,
    SPEARMAN_PERMUTATION_MAX_N,
    BlqPolicy,
    NonexpanderPolicy,
    auc_column,
    kinetic_series,
    prepare_series,
    with_groups,
)
from analysis.kinetics.summaries import geometric_summary, group_curve, group_summary
from analysis.vocab import LANDMARKS

__all__ = ["ASSAYS", "CD7_READOUTS", "LANDMARKS", "BLQ_POLICIES", "KINETICS_COLUMNS",
           "MWU_EXACT_MAX_N", "SPEARMAN_PERMUTATION_MAX_N", "Correlation", "auc_column",
           "kinetic_series", "prepare_series", "with_groups", "kinetic_parameters", "before_hsct",
           "kinetics_table", "group_summary", "group_curve", "geometric_summary",
           "NONEXPANDER_POLICIES", "concordance", "spearman", "repeated_correlation",
           "RepeatedConcordance", "exposure_response", "exposure_tests", "BlqPolicy",
           "NonexpanderPolicy"]
