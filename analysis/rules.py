"""Every clinical rule setting of a study in one frozen record, with its default and its source.

One job: the rule settings record and reading it from study.toml; it is long because every
threshold of every clinical rule is declared here, each with its default, help and source.

A study states its own settings in `study.toml`:

    [rules]
    retic_threshold = 20      # classic Camitta / Chinese consensus (manual count)
    ti_window = 56
    plt_support_days = 7

`rules_for(study)` reads that table once (unknown keys and wrong types are reported, never
ignored silently) and every derived table, page, CLI table and export takes its settings from the
returned `Rules`. `Rules.toml_snippet()` gives the text that reproduces a set of settings, and
`Rules.rows()` the table a page shows under "Rules used". docs/rules.md lists every field with
the same defaults and sources (a test keeps the two in step).

Fields are grouped by the rule that uses them; the `metadata` of each field holds its help text
and its source, so the docs, the pages and the CLI read one description.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["Rules", "RuleError", "DEFAULT_RULES", "rules_for", "rules_from_config", "rule_fields"]


def _f(default: Any, help: str, source: str, *, choices: tuple[Any, ...] | None = None) -> Any:
    meta = {"help": help, "source": source}
    if choices is not None:
        meta["choices"] = choices
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Rules:
    # ---- severity and response (analysis/response/) ---------------------------------------
    retic_threshold: float = _f(
        60.0, "RETIC below this (x10^9/L) counts towards severe (modified Camitta)",
        "BSH guideline (Killick et al., Br J Haematol 2016;172:187): < 60 automated count; "
        "classic Camitta 1976 and the Chinese consensus (2017): < 20 manual count")
    ti_window: int = _f(
        56, "transfusion independence: days with no RBC or platelet transfusion up to an "
        "assessment", "BSH 2016 / Killick; NIH trials (Townsley, NEJM 2017) use 8 weeks")
    count_window: int = _f(
        7, "an assessment takes the count nearest its day within +/- this many days",
        "project convention (visit windows of +/- 1 week in SAA trials)")

    # Section marker: other rule groups add their fields below, each with help and source.

    # ---- counts, severity and response (analysis/response/, analysis/baseline.py) -------
    count_tie: str = _f(
        "earlier", "two counts equally near an assessment day: take the earlier or the later "
        "one", "project convention: the earlier count was known on the assessment day",
        choices=("earlier", "later"))
    severe_anc: float = _f(
        0.5, "ANC below this (x10^9/L) counts towards severe",
        "Camitta et al., Blood 1976;48:63; Bacigalupo et al., Br J Haematol 1988;70:177")
    severe_plt: float = _f(
        20.0, "PLT below this (x10^9/L) counts towards severe", "Camitta 1976; Bacigalupo 1988")
    very_severe_anc: float = _f(
        0.2, "ANC below this (x10^9/L) makes severe aplastic anaemia very severe (vSAA)",
        "Bacigalupo et al., Br J Haematol 1988;70:177")
    nonsevere_pr: str = _f(
        "bsh", "PR for a patient not severe at baseline: 'bsh' = the BSH non-severe partial "
        "response (transfusion independence, or doubling or normalisation of a lineage, or "
        "Hb +30 g/L if < 60, ANC +0.5 if < 0.5, PLT +20 if < 20); 'ne' = not evaluable",
        "BSH guideline (Killick et al., Br J Haematol 2016;172:187), response criteria for "
        "non-severe aplastic anaemia", choices=("bsh", "ne"))
    screening_window: int = _f(
        30, "baseline counts: the last values within this many days before lymphodepletion "
        "starts (never a count after it)",
        "DESIGN.md section 3; SAA protocols screen within about 4 weeks of treatment")
    baseline_on_ld_day: bool = _f(
        False, "a count drawn on the day lymphodepletion starts is baseline (drawn before the "
        "first dose); off: only counts from the days before",
        "conservative default: the time of day of a same-day sample is not recorded")
    landmark_tolerance: int = _f(
        14, "ORR at a landmark uses the assessment nearest the landmark within +/- this many "
        "days", "project convention (visit windows of +/- 2 weeks at M3 and later)")

    # ---- transfusion and growth-factor support (analysis/response/, recovery.py) --------
    plt_support_days: int = _f(
        7, "a platelet count up to this many days after a platelet transfusion (same day "
        "included) is transfusion-supported and cannot make a criterion met",
        "CIBMTR/EBMT platelet engraftment: no platelet transfusion in the preceding 7 days; "
        "transfused platelets circulate for up to 7-10 days")
    rbc_support_days: int = _f(
        28, "a haemoglobin up to this many days after a red-cell transfusion (same day "
        "included) is transfusion-supported and cannot make a criterion met",
        "project convention: a red-cell transfusion raises Hb for weeks (transfused red cells "
        "circulate with a half-life of about 30 days); set the protocol's interval")
    gcsf_support_days: int = _f(
        7, "an ANC during G-CSF or up to this many days after its last dose is "
        "growth-factor-supported and cannot make a criterion met",
        "project convention: filgrastim raises ANC within a day and its effect fades within "
        "about a week of the last dose; responses judge the marrow's own neutrophils")

    # ---- recovery (analysis/recovery.py) --------------------------------------------------
    anc_recovery: float = _f(
        0.5, "neutrophil recovery: ANC at or above this (x10^9/L), unsupported by G-CSF",
        "CIBMTR neutrophil engraftment: first of 3 consecutive ANC >= 0.5")
    plt_recovery: float = _f(
        20.0, "platelet recovery: PLT at or above this (x10^9/L), no platelet transfusion in "
        "the platelet support window", "CIBMTR platelet engraftment: first of 3 consecutive "
        "PLT >= 20 without transfusion in the 7 days before")
    recovery_runs: int = _f(
        3, "recovery needs this many consecutive measurements at or above the threshold",
        "CIBMTR engraftment definitions (3 consecutive measurements)")

    # ---- CTCAE cytopenia grades and lower limits of normal (analysis/recovery.py) ---------
    lln_anc: float = _f(2.0, "lower limit of normal, ANC (x10^9/L), for CTCAE grades",
                        "NCI CTCAE v5.0 (2017) grades against the laboratory's LLN; typical "
                        "adult reference value")
    lln_plt: float = _f(150.0, "lower limit of normal, PLT (x10^9/L), for CTCAE grades",
                        "NCI CTCAE v5.0; typical adult reference value")
    lln_alc: float = _f(1.0, "lower limit of normal, lymphocytes (x10^9/L), for CTCAE grades",
                        "NCI CTCAE v5.0; typical adult reference value")
    lln_hgb_female: float = _f(
        120.0, "normal haemoglobin for women (g/L): CTCAE anaemia LLN and BSH CR",
        "WHO anaemia threshold; BSH 2016 CR: Hb normal for sex")
    lln_hgb_male: float = _f(
        130.0, "normal haemoglobin for men (g/L): CTCAE anaemia LLN for men; BSH CR for men "
        "and, the stricter reading, when sex is unknown (CTCAE then uses the female value)",
        "WHO anaemia threshold; BSH 2016 CR: Hb normal for sex")

    # ---- ICAHT (analysis/haematotox.py) ---------------------------------------------------
    icaht_stable_recovery_days: int = _f(
        3, "early ICAHT: a spell above the ANC threshold shorter than this many days is not a "
        "stable recovery and its days count as neutropenic",
        "Rejeski et al., Blood 2023;142:865 (EHA/EBMT ICAHT consensus): non-stable recovery "
        "counts towards the cumulative duration")
    icaht_late_min_measurements: int = _f(
        2, "late ICAHT: a grade needs at least this many ANC measurements at or below its "
        "threshold after day 30 (non-transient neutropenia)",
        "Rejeski et al., Blood 2023;142:865: late ICAHT needs non-transient neutropenia")

    # ---- toxicity: CRS grade from vitals (analysis/toxicity/) -----------------------------
    crs_window_end: int = _f(
        14, "vitals are graded for CRS from infusion (day 0) to this day, and around recorded "
        "CRS episodes",
        "ASTCT 2019 (Lee et al., Biol Blood Marrow Transplant 2019;25:625) grades CRS as a "
        "syndrome after immune effector cells; onset in the first 2 weeks in the pivotal "
        "trials (median day 2-3; Neelapu, NEJM 2017; Maude, NEJM 2018)")
    crs_episode_margin: int = _f(
        1, "days either side of a recorded CRS episode that are also graded from vitals",
        "project convention (an episode's first and last day are often recorded a day off "
        "the vitals)")
    crs_fever_c: float = _f(
        38.0, "fever: the day's highest temperature at least this (C)",
        "ASTCT 2019 (Lee et al.): temperature >= 38 C")
    crs_hypotension_sbp: float = _f(
        90.0, "hypotension: systolic blood pressure below this (mmHg) without vasopressors",
        "ASTCT 2019 (Lee et al.) with CTCAE v5 hypotension; SBP < 90 mmHg")
    crs_low_flow_max_lpm: float = _f(
        6.0, "oxygen up to this flow (L/min) is low-flow (grade 2); above it high-flow "
        "(grade 3)", "ASTCT 2019 (Lee et al.): low-flow nasal cannula <= 6 L/min")
    crs_masked_fever: bool = _f(
        True, "after tocilizumab or a corticosteroid given during CRS, fever is no longer "
        "required: hypotension and hypoxia grade to the end of the CRS window",
        "ASTCT 2019 (Lee et al.): 'in patients who have CRS then receive antipyretic or "
        "anticytokine therapy such as tocilizumab or steroids, fever is no longer required "
        "to grade subsequent CRS severity'")
    crs_fever_carry_days: int = _f(
        0, "a febrile day also counts as febrile for this many following days (fever "
        "masked by antipyretics)", "ASTCT 2019 (Lee et al.) on antipyretics; 0 = the day's "
        "own temperature only")

    # ---- kinetics: CAR-T cellular kinetics (analysis/kinetics/) ---------------------------
    auc_impute_day0: bool = _f(
        False, "with no day-0 sample, start the AUC at level 0 on day 0 (else the AUC is not "
        "computed)", "PKNCA (Denney et al., CPT Pharmacometrics Syst Pharmacol 2015) imputes "
        "a start concentration of 0 only when asked (impute = 'start_conc0')")
    kinetics_nonexpanders: str = _f(
        "exclude", "non-expanders (no quantifiable value after infusion) in a group's "
        "geometric mean: 'exclude' (counted and stated, not in the mean) or 'half_lloq' "
        "(their Cmax enters at LLOQ/2)",
        "Stein et al., CPT Pharmacometrics Syst Pharmacol 2019;8:285 (CAR-T cellular "
        "kinetics): non-expanders are reported apart from the geometric means")
    replicate_quantifiable_share: float = _f(
        0.5, "a day with replicates is quantifiable when at least this share of them is >= "
        "LLOQ; its value is then the mean of the quantifiable replicates",
        "project convention: below-LLOQ is decided per replicate before averaging (an "
        "average of readouts below the LLOQ is not a measured value)")

    # ---- comparisons: small-cohort statistics (analysis/stats.py, differential.py) ----------
    group_defining_analytes: tuple = _f(
        ("ANC", "PLT", "HGB", "RETIC"), "analytes that define the response groups: marked "
        "'defines the groups' and kept out of the FDR family",
        "DESIGN.md section 3; NIH (Townsley, NEJM 2017) and BSH (Killick 2016) responses and "
        "Camitta severity are made from ANC, PLT, HGB and RETIC")
    defining_in_fdr: bool = _f(
        False, "include the group-defining analytes in the BH-FDR family",
        "Benjamini & Hochberg 1995: the family is the hypotheses of interest; a feature that "
        "defines the groups is not a finding")
    fdr_across_windows: bool = _f(
        False, "Benjamini-Hochberg across every window tested (baseline, D14, D28, M3, M6, "
        "M12) instead of within one window", "Benjamini & Hochberg 1995")
    exact_max_n: int = _f(
        20, "up to this many patients in a comparison, Mann-Whitney p is exact (or exact "
        "permutation with ties); above, the normal approximation",
        "Mann & Whitney 1947; scipy.stats.mannwhitneyu (exact below 8 per group by default)")

    # ---- vocabulary: tissues and cell lineages (analysis/vocab.py) --------------------------
    cell_lineages: tuple = _f(
        (), "study-specific cell-type labels and their lineage, as [label, lineage] pairs "
        "(lineages: T, NK, B, plasma, myeloid, erythroid, megakaryocyte, progenitor, tumour, "
        "stromal, other); they extend and override the built-in table",
        "analysis/vocab.py LINEAGES (explicit names; no pattern matching on fragments)")
    cd7_threshold: float = _f(
        0.0, "a cell is CD7+ when its CD7 expression (log-normalised) is above this",
        "project convention: any detected CD7 transcript (scRNA-seq dropout makes a higher "
        "cut-off study-specific)")

    # ---- single-cell CAR status and clones (analysis/car_status.py, clone_tracking.py) ------
    car_feature: tuple = _f(
        ("CAR", "*-CAR", "*_CAR", "CAR-*", "CAR_*", "*scFv*"), "name patterns (case-blind, "
        "* = anything) of the CAR transcript among the single-cell features, or of an obs "
        "column holding a CAR channel (ADT or flow); the first feature matching wins",
        "project convention: constructs are added to the reference as a named feature such "
        "as 'CAR', 'CD7-CAR' or an scFv sequence")
    car_threshold_method: str = _f(
        "mixture", "how a cell is called CAR+: 'mixture' = cut where a two-component Gaussian "
        "mixture on log1p(CAR counts) changes component (fallback: any CAR count when the "
        "mixture is degenerate); 'fixed' = CAR counts above car_threshold",
        "two-component mixture on log counts as for CITE-seq/hashtag calls (Stoeckius et "
        "al., Genome Biol 2018); scikit-learn GaussianMixture", choices=("mixture", "fixed"))
    car_threshold: float = _f(
        0.0, "with car_threshold_method = 'fixed': a cell is CAR+ when its CAR counts are "
        "above this (0 = any detected CAR count)",
        "project convention; set from the histogram on the Immune landscape page")
    clone_fdr: float = _f(
        0.05, "a clone is expanded or contracted between two timepoints when the BH q of its "
        "Fisher exact test (clone vs the rest of the repertoire) is below this",
        "DeWitt et al., J Virol 2015 (Fisher test of clone counts between samples); "
        "Benjamini & Hochberg 1995")
    clone_top: int = _f(
        10, "dominant clones: the largest clonotypes of a patient's reference sample "
        "(baseline, or the infusion product when present) that are followed over time",
        "project convention (immunarch trackClonotypes and the baseline top-10 share)")
    rarefaction_depth: int = _f(
        0, "repertoire metrics compared between samples are computed on this many "
        "receptors drawn without replacement (0 = the smallest sample's depth, at least "
        "rarefaction_min_depth)", "rarefaction (Hurlbert 1971; Chiffelle et al., Front "
        "Immunol 2020)")
    rarefaction_min_depth: int = _f(
        100, "samples with fewer receptors than this are left out of depth-matched "
        "comparisons (with depth 0 the common depth is never below this)",
        "project convention: below about 100 receptors richness estimates are unstable")
    rarefaction_repeats: int = _f(
        50, "subsamplings per sample (seeded); the mean and the 2.5-97.5 % interval are shown",
        "project convention")

    # ---- single-cell pseudobulk and signatures (analysis/pseudobulk.py, signatures.py) ----
    pseudobulk_min_cells: int = _f(
        10, "a sample enters a pseudobulk test (and a per-sample signature score) only with at "
        "least this many chosen cells",
        "project convention (muscat/Crowell et al., Nat Commun 2020 drop samples with few "
        "cells of a cluster)")
    pseudobulk_min_count: int = _f(
        10, "edgeR filterByExpr min.count: a gene is tested when its CPM reaches min_count / "
        "median library size x 1e6 in at least the smaller group's number of samples",
        "edgeR filterByExpr default (Chen, Lun & Smyth, F1000Research 2016)")
    pseudobulk_min_total_count: int = _f(
        15, "edgeR filterByExpr min.total.count: a tested gene has at least this many counts "
        "over the samples of the test", "edgeR filterByExpr default")
    signature_method: str = _f(
        "mean_z", "default signature score: 'mean_z' (mean z-score of log-normalised "
        "expression over the set's genes) or 'aucell' (AUCell rank score)",
        "mean z as scanpy score_genes without control genes; AUCell: Aibar et al., Nat "
        "Methods 2017", choices=("mean_z", "aucell"))

    # ---- presentation: landmark survival and HSCT on plots (analysis/survival.py, views) ----
    survival_landmark_day: int = _f(
        90, "survival split by response: groups are the response reached on or before this "
        "day, among patients still event-free and followed at it; time counts from it",
        "landmark analysis against immortal-time bias (Anderson, Cain & Gelber, J Clin Oncol "
        "1983;1:710-9); day 90 = the M3 assessment")
    post_hsct_display: str = _f(
        "distinct", "values on or after a patient's HSCT on time plots: 'distinct' (drawn "
        "faded and dashed, apart from the CAR-T series) or 'stop' (the series ends at the "
        "HSCT); group medians never include them",
        "project convention: after an HSCT the counts and kinetics are no longer the CAR-T's "
        "account (as responses, analysis/response/)")

    # ---- embedding raster (views/landscape_raster.py) --------------------------------------
    raster_above: int = _f(
        1_000_000, "single-cell embeddings with more cells than this are drawn server-side as "
        "a raster of every cell (datashader), drawn again for each window zoomed or panned to",
        "project convention: about a million WebGL points is where browsers slow down "
        "(DESIGN.md section 5)")
    raster_points_below: int = _f(
        50_000, "a zoomed raster window holding at most this many cells is drawn as points "
        "with hover (each cell's patient, day and type)",
        "project convention: tens of thousands of WebGL points with hover stay responsive in "
        "a browser")

    # ---- helpers ----------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One row per setting: name, value, default, help, source (for 'Rules used')."""
        out = []
        for f in fields(self):
            out.append({"setting": f.name, "value": _show(getattr(self, f.name)),
                        "default": _show(f.default), "help": f.metadata.get("help", ""),
                        "source": f.metadata.get("source", "")})
        return out

    def changed(self) -> dict[str, Any]:
        """The settings that differ from the defaults."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != f.default}

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def toml_snippet(self, *, only_changed: bool = False,
                     names: Iterable[str] | None = None) -> str:
        """The `[rules]` table of study.toml that reproduces these settings (all of them, the
        changed ones, or the named ones)."""
        values = self.changed() if only_changed else self.as_dict()
        if names is not None:
            values = {n: values[n] for n in names if n in values}
        lines = ["[rules]"] + [f"{k} = {_toml(v)}" for k, v in values.items()]
        return "\n".join(lines) + "\n"

    def with_(self, **changes: Any) -> Rules:
        """A copy with some settings changed (a page's widgets, a CLI option); checked."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return rules_from_config({**self.as_dict(), **changes}, source="option")


class RuleError(ValueError):
    """A [rules] setting in study.toml that is unknown or of the wrong type."""


def _show(v: Any) -> str:
    if isinstance(v, tuple | list):
        return ", ".join(map(str, v))
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={x}" for k, x in v.items())
    return str(v)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f'"{k}" = {_toml(x)}' for k, x in v.items()) + " }"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def rule_fields() -> dict[str, Any]:
    """Field objects by name (type, default, help, source), for docs and CLI options."""
    return {f.name: f for f in fields(Rules)}


def _coerce(name: str, value: Any, default: Any, source: str) -> Any:
    def bad(kind: str) -> RuleError:
        return RuleError(f"{source} [rules] {name} = {value!r}: expected {kind} "
                         f"(default {_toml(default)})")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a whole number")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a text value")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple):
            raise bad("a list")
        return tuple(tuple(x) if isinstance(x, list | tuple) else x for x in value)
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise bad("a table")
        return dict(value)
    return value


def rules_from_config(config: Mapping[str, Any], *, source: str = "study.toml") -> Rules:
    """Rules from a `[rules]` mapping; raises RuleError naming the setting and what is wanted."""
    known = rule_fields()
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise RuleError(f"{source} [rules]: unknown setting(s) {', '.join(unknown)}; "
                        f"known settings are {', '.join(known)}")
    values = {k: _coerce(k, v, known[k].default, source) for k, v in config.items()}
    for k, v in values.items():
        choices = known[k].metadata.get("choices")
        if choices is not None and v not in choices:
            raise RuleError(f"{source} [rules] {k} = {_toml(v)}: choose one of "
                            f"{', '.join(map(_toml, choices))}")
    return replace(DEFAULT_RULES, **values)


DEFAULT_RULES = Rules()


def rules_for(study: Study) -> Rules:
    """The study's rules: defaults overridden by study.toml `[rules]`. A bad table raises
    RuleError; the loader reports it as a finding when the study is opened."""
    config = getattr(study, "config", None) or {}
    table = config.get("rules", {}) or {}
    if not isinstance(table, Mapping):
        raise RuleError("study.toml: [rules] must be a table")
    return rules_from_config(table)
