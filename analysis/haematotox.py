"""Immune effector cell-associated haematotoxicity (ICAHT), EHA/EBMT consensus grading.

Rejeski K, Subklewe M, Aljurf M, et al. Immune effector cell-associated hematotoxicity:
EHA/EBMT consensus grading and best practice recommendations. Blood 2023;142(10):865-877.
The grade rests on the depth and duration of neutropenia:

- Early ICAHT (days 0-30), from the cumulative days with ANC <= 0.5 and <= 0.1 x10^9/L:
  grade 1: ANC <= 0.5 for 1-6 days; grade 2: <= 0.5 for 7-13 days; grade 3: <= 0.5 for
  14-30 days, or ANC <= 0.1 for >= 7 days; grade 4: ANC <= 0.5 on every day of days 0-30
  (never above 0.5), or ANC <= 0.1 for >= 14 days.
- Late ICAHT (after day 30): grade 1 ANC <= 1.5, grade 2 <= 1.0, grade 3 <= 0.5, grade 4
  <= 0.1 x10^9/L, non-transient: at least `icaht_late_min_measurements` measurements at or
  below the grade's threshold.

How days are counted from sampled counts (the consensus counts days): a count stands until
the next one (the value on a day without a sample is the last one before it; day 0 takes the
pre-infusion sample of day 0, else the last count of the 7 days before). A spell above the
threshold shorter than `icaht_stable_recovery_days` that is followed by neutropenia again is
not a stable recovery, and its days count towards the total (the consensus counts days of
non-stable recovery). Both windows stop the day before an HSCT and at the end of follow-up.
When the observation of days 0-30 is incomplete (follow-up or HSCT ends before day 30, or no
ANC), the early grade is NE unless the days seen already decide it; the rule text states the
grade reached so far.

G-CSF does not change the grade (it is toxicity, not response). In SAA, neutropenia before
infusion is the disease itself: the baseline ANC is reported beside the grade, since a patient
who stays neutropenic is both a non-responder and "grade 4" by these counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from analysis.registry import derived_table
from analysis.rules import Rules, rules_for
from analysis.vocab import is_blood

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["EARLY_DAYS", "LATE_THRESHOLDS", "early_grade", "icaht_from_counts", "icaht_table"]

EARLY_DAYS = (0, 30)
# grade -> ANC threshold (x10^9/L, "at or below") for late ICAHT
LATE_THRESHOLDS = {1: 1.5, 2: 1.0, 3: 0.5, 4: 0.1}
_MILD, _PROFOUND = 0.5, 0.1


def early_grade(days_500: int, days_100: int, *, window_days: int = 31) -> int:
    """The early ICAHT grade from the days with ANC <= 0.5 and <= 0.1 in days 0-30."""
    if days_100 >= 14 or days_500 >= window_days:
        return 4
    if days_100 >= 7 or days_500 >= 14:
        return 3
    if days_500 >= 7:
        return 2
    return 1 if days_500 >= 1 else 0


def _neutropenic_days(values: list[float | None], threshold: float, stable: int) -> list[bool]:
    """Per day: at or below threshold, with spells above it shorter than `stable` days
    followed by neutropenia counted as neutropenic (non-stable recovery)."""
    low = [v is not None and v <= threshold for v in values]
    out = list(low)
    i, n = 0, len(values)
    while i < n:
        if values[i] is not None and not low[i]:
            j = i
            while j < n and values[j] is not None and not low[j]:
                j += 1
            before = i > 0 and low[i - 1]
            after = j < n and low[j]
            if before and after and (j - i) < stable:
                for k in range(i, j):
                    out[k] = True
            i = j
        else:
            i += 1
    return out


def icaht_from_counts(anc: pl.DataFrame, follow_up: pl.DataFrame, *,
                      rules: Rules | None = None) -> pl.DataFrame:
    """ICAHT per patient from daily ANC values.

    anc: subject_id, day, value (x10^9/L; one value per day; only days before an HSCT).
    follow_up: subject_id, end (last day observed, the day before an HSCT at the latest).
    Returns subject_id, early_grade (null = NE), days_anc_le_0_5, days_anc_le_0_1,
    early_rule, late_grade (null = NE), late_nadir, late_nadir_day, late_rule."""
    from analysis.rules import DEFAULT_RULES

    rules = rules if rules is not None else DEFAULT_RULES
    lo, hi = EARLY_DAYS
    rows = []
    by_subject = {k[0]: g.sort("day") for k, g in anc.group_by("subject_id")}
    for sid, end in follow_up.select("subject_id", "end").iter_rows():
        g = by_subject.get(sid)
        obs = [] if g is None else list(zip(g["day"].to_list(), g["value"].to_list(),
                                            strict=True))
        pre = [(d, v) for d, v in obs if lo - 7 <= d <= lo]
        post = [(d, v) for d, v in obs if d > lo]
        last_day = min(hi + rules.icaht_stable_recovery_days, end) if end is not None else (
            max((d for d, _ in post), default=lo))
        timeline: list[float | None] = []
        current = pre[-1][1] if pre else None
        it = iter(post)
        nxt = next(it, None)
        for d in range(lo, int(last_day) + 1):
            while nxt is not None and nxt[0] <= d:
                current = nxt[1]
                nxt = next(it, None)
            timeline.append(current)
        window = timeline[: hi - lo + 1]
        d500 = sum(_neutropenic_days(timeline, _MILD, rules.icaht_stable_recovery_days)
                   [: hi - lo + 1])
        d100 = sum(_neutropenic_days(timeline, _PROFOUND, rules.icaht_stable_recovery_days)
                   [: hi - lo + 1])
        seen = [v for v in window if v is not None]
        complete = len(window) == hi - lo + 1 and len(seen) == len(window)
        grade = early_grade(d500, d100, window_days=hi - lo + 1)
        counts = f"ANC <= 0.5 on {d500} d, <= 0.1 on {d100} d of days {lo}-{hi}"
        if not seen:
            e_grade, e_rule = None, f"NE: no ANC in days {lo}-{hi}"
        elif complete:
            e_grade, e_rule = grade, f"grade {grade}: {counts}"
        elif grade >= 3 and d100 >= 14:
            e_grade, e_rule = 4, f"grade 4: {counts} (observed to day {lo + len(seen) - 1})"
        else:
            upto = lo + len(window) - 1 if window else lo
            gaps = []
            first = next((i for i, v in enumerate(window) if v is not None), None)
            if first:
                gaps.append(f"no ANC before day {lo + first} (none on day {lo} or in the 7 "
                            f"days before)")
            if len(window) < hi - lo + 1:
                gaps.append(f"observed only to day {upto} (end of follow-up or HSCT)")
            e_grade = None
            e_rule = (f"NE: days {lo}-{hi} not fully observed ({'; '.join(gaps)}); at least "
                      f"grade {grade} so far: {counts}")
        late = [(d, v) for d, v in obs if d > hi and (end is None or d <= end)]
        if not late:
            l_grade, nadir, nadir_day = None, None, None
            l_rule = f"NE: no ANC after day {hi}"
        else:
            nadir_day, nadir = min(late, key=lambda dv: (dv[1], dv[0]))
            l_grade = 0
            for gr, thr in sorted(LATE_THRESHOLDS.items()):
                if sum(v <= thr for _, v in late) >= rules.icaht_late_min_measurements:
                    l_grade = gr
            thr_txt = f" (ANC <= {LATE_THRESHOLDS[l_grade]:g} on >= " \
                f"{rules.icaht_late_min_measurements} measurements)" if l_grade else ""
            l_rule = (f"grade {l_grade}{thr_txt}: nadir ANC {nadir:g} on day {nadir_day}, "
                      f"{len(late)} measurements after day {hi}")
        rows.append({"subject_id": sid, "early_grade": e_grade, "days_anc_le_0_5": d500,
                     "days_anc_le_0_1": d100, "early_rule": e_rule, "late_grade": l_grade,
                     "late_nadir": nadir, "late_nadir_day": nadir_day, "late_rule": l_rule})
    return pl.DataFrame(rows, schema={
        "subject_id": pl.String, "early_grade": pl.Int64, "days_anc_le_0_5": pl.Int64,
        "days_anc_le_0_1": pl.Int64, "early_rule": pl.String, "late_grade": pl.Int64,
        "late_nadir": pl.Float64, "late_nadir_day": pl.Int64, "late_rule": pl.String})


@derived_table("icaht", "EHA/EBMT ICAHT grade per patient: early (days 0-30) and late (after "
               "day 30), from neutrophil depth and duration, stopping at HSCT")
def icaht_table(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """icaht_from_counts over a study, with the baseline ANC (analysis.baseline) beside it:
    subject_id, baseline_anc, early_grade, days_anc_le_0_5, days_anc_le_0_1, early_rule,
    late_grade, late_nadir, late_nadir_day, late_rule."""
    from analysis.baseline import baseline
    from analysis.response import counts_before_hsct, follow_up_end, hsct_per_patient

    rules = rules if rules is not None else rules_for(study)
    m = counts_before_hsct(study).filter((pl.col("analyte") == "ANC")
                                         & pl.col("value").is_not_null())
    if "tissue" in m.columns:
        m = m.filter(is_blood())
    anc = (m.group_by("subject_id", pl.col("day").cast(pl.Int64)).agg(pl.col("value").mean())
           .sort("subject_id", "day"))
    end = (follow_up_end(study).join(hsct_per_patient(study), on="subject_id", how="left")
           .select("subject_id", pl.min_horizontal("end", pl.col("_hsct") - 1).alias("end")))
    out = icaht_from_counts(anc, end, rules=rules)
    base = baseline(study, rules=rules).select("subject_id", pl.col("anc").alias("baseline_anc"))
    return (study.patients.select("subject_id").join(base, on="subject_id", how="left")
            .join(out, on="subject_id", how="left"))
