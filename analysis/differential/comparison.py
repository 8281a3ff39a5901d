"""The tests of a comparison: group A vs group B for every feature of a layer in a window
(Mann-Whitney with exact / permutation p for small cohorts, Fisher for presence features,
Hedges' g / Cliff's delta, log2 fold change, Benjamini-Hochberg FDR over a stated family),
per window or across windows; DESeq2 for bulk RNA through `deseq2`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from analysis import stats as st
from analysis.differential.deseq2 import deseq2_compare
from analysis.differential.groups import DEFINES_GROUPS, assign_groups, defining_features
from analysis.differential.layers import LAYERS, LOG2_LAYERS, PRESENT, Layer
from analysis.differential.picking import picked_values, rna_matrix
from analysis.differential.results import (
    EXACT_MAX_N,
    MIN_N,
    RESULT_SCHEMA,
    sort_results,
)
from analysis.differential.windows import WINDOWS, Window, parse_window
from analysis.registry import Option, derived_table
from analysis.rules import Rules, rules_for

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["compare", "compare_windows", "compare_matrix", "comparison_table", "EffectMeasure",
           "Method"]

EffectMeasure = Literal["hedges_g", "cliffs_delta"]
Method = Literal["rank", "deseq2"]   # rank-based tests, or pydeseq2 on bulk RNA counts

_VALUES_MAX_PATIENTS = 40   # values_a / values_b text only up to this many patients


def compare_matrix(x: np.ndarray, *, in_a: np.ndarray, in_b: np.ndarray,
                   binary: np.ndarray | None = None, min_n: int = MIN_N,
                   seed: int = 0, exact_max_n: int = EXACT_MAX_N) -> dict[str, np.ndarray]:
    """Tests per row of `x` (features x patients, NaN = missing) between the patients flagged
    `in_a` and `in_b` (analysis.stats: Mann-Whitney, Fisher for presence rows, effect sizes).
    Returns arrays n_a, n_b, mean_a, mean_b, median_a, median_b, hedges_g, cliffs_delta,
    prop_diff, p_value, test, reason (one entry per feature)."""
    x = np.asarray(x, dtype=float)
    f = x.shape[0]
    in_a, in_b = np.asarray(in_a, bool), np.asarray(in_b, bool)
    binary = np.zeros(f, bool) if binary is None else np.asarray(binary, bool)
    eff = st.effect_sizes(x, in_a=in_a, in_b=in_b)
    na, nb = eff["n_a"], eff["n_b"]
    reason = np.full(f, "", dtype=object)
    too_few = (na < min_n) | (nb < min_n)
    reason[too_few] = f"fewer than {min_n} patients in a group: no test"
    _, p, test = st.mann_whitney_rows(x, in_a=in_a, in_b=in_b, rows=~binary & ~too_few,
                                      exact_max_n=exact_max_n, seed=seed)
    fisher = binary & ~too_few
    if fisher.any():
        p = np.where(fisher, st.fisher_rows(x, in_a=in_a, in_b=in_b, rows=fisher), p)
        test[fisher] = "Fisher exact"
    with np.errstate(all="ignore"):
        prop = np.where(binary, eff["mean_a"] - eff["mean_b"], np.nan)
    return {**eff, "prop_diff": prop, "p_value": p, "test": test, "reason": reason}


def _fmt_values(df: pl.DataFrame) -> pl.DataFrame:
    """feature, group -> "SAA-001 1.23 (d28); ..." (the values behind each row)."""
    return (df.sort("subject_id")
            .with_columns((pl.col("subject_id") + " " + pl.col("value").round_sig_figs(4)
                           .cast(pl.String) + " (d" + pl.col("day").cast(pl.String) + ")")
                          .alias("_v"))
            .group_by("feature", "group").agg(pl.col("_v").str.join("; ")))


def compare(study: Study, *, layer: Layer, window: str | Window,
            groups: Any = None, group_column: str = "response_group",
            group_a: str | None = None, group_b: str | None = None,
            change_from_baseline: bool = False, panel: str | None = None,
            features: Sequence[str] | None = None, subjects: Sequence[str] | None = None,
            effect_measure: EffectMeasure = "hedges_g", method: Method = "rank",
            min_n: int = MIN_N, min_count: int = 10, rules: Rules | None = None
            ) -> pl.DataFrame:
    """Group A vs group B for every feature of `layer` in `window`, sorted by p.

    Columns: feature, n_group_a, n_group_b, effect, effect_measure, p_value, q_value, then
    group_a, group_b, mean_a, mean_b, median_a, median_b, log2fc, hedges_g, cliffs_delta, test,
    reason (why no test), note, layer, window, window_rule, days (range of the days used),
    change_from_baseline, values_a, values_b (every patient's value and day; up to 40
    patients), defines_groups, fdr_family (which hypotheses the q-value is corrected over).

    Features that define the groups (`defining_features`) are tested and shown, marked
    "defines the groups", and left out of the FDR family (q null) unless the rule setting
    `defining_in_fdr` is on. With `fdr_across_windows`, q is Benjamini-Hochberg across every
    named window (baseline, D14, D28, M3, M6, M12, and this one) at once (`compare_windows`).
    DESeq2 results keep DESeq2's own adjusted p within the window.

    `effect_measure`: "hedges_g" or "cliffs_delta" (presence features always use the difference
    in proportions). `method`: "rank" (Mann-Whitney, every layer) or "deseq2" (rna only: raw
    counts, genes with at least `min_count` reads in as many samples as the smaller group).
    """
    rules = rules if rules is not None else rules_for(study)
    kw = {"layer": layer, "groups": groups, "group_column": group_column, "group_a": group_a,
          "group_b": group_b, "change_from_baseline": change_from_baseline, "panel": panel,
          "features": features, "subjects": subjects, "effect_measure": effect_measure,
          "method": method, "min_n": min_n, "min_count": min_count, "rules": rules}
    w = parse_window(window)
    if rules.fdr_across_windows and method == "rank":
        names = [n for n in WINDOWS if not (change_from_baseline and n == "baseline")]
        wins: list[str | Window] = [*names] if w.label in WINDOWS else [*names, w]
        both = compare_windows(study, windows=wins, **{k: v for k, v in kw.items()})
        return sort_results(both.filter(pl.col("window") == w.label))
    return _compare_window(study, window=w, **kw)


def compare_windows(study: Study, *, windows: Sequence[str | Window] = tuple(WINDOWS),
                    rules: Rules | None = None, **kwargs: Any) -> pl.DataFrame:
    """`compare` in each window, one frame (column `window` tells them apart). With the rule
    setting `fdr_across_windows` the q-values are Benjamini-Hochberg over every test of every
    window (group-defining features still out of the family unless `defining_in_fdr`); else
    each window is its own family."""
    rules = rules if rules is not None else rules_for(study)
    frames = []
    for name in windows:
        w = parse_window(name)
        if kwargs.get("change_from_baseline") and w.label == "baseline":
            continue
        frames.append(_compare_window(study, window=w, rules=rules, **kwargs))
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame(schema=RESULT_SCHEMA)
    out = pl.concat(frames)
    if not rules.fdr_across_windows or kwargs.get("method", "rank") != "rank":
        return out
    family = out.get_column("p_value").is_not_null() & \
        (~out.get_column("defines_groups") | rules.defining_in_fdr)
    q = st.bh(out.get_column("p_value").fill_null(np.nan).to_numpy(),
              family=family.to_numpy())
    n_fam = int(family.sum())
    names = ", ".join(f.get_column("window")[0] for f in frames)
    label = f"BH across {len(frames)} windows ({names}): {n_fam} tests"
    return out.with_columns(
        q_value=pl.Series([None if not np.isfinite(v) else float(v) for v in q],
                          dtype=pl.Float64),
        fdr_family=pl.when(pl.Series(family)).then(pl.lit(label))
        .otherwise(pl.col("fdr_family")))


def _compare_window(study: Study, *, layer: Layer, window: Window,
                    groups: Any, group_column: str, group_a: str | None, group_b: str | None,
                    change_from_baseline: bool, panel: str | None,
                    features: Sequence[str] | None, subjects: Sequence[str] | None,
                    effect_measure: EffectMeasure, method: Method, min_n: int, min_count: int,
                    rules: Rules) -> pl.DataFrame:
    if effect_measure not in ("hedges_g", "cliffs_delta"):
        raise ValueError("effect_measure must be 'hedges_g' or 'cliffs_delta'")
    w = window
    assigned, la, lb = assign_groups(study, groups=groups, group_column=group_column,
                                     group_a=group_a, group_b=group_b, subjects=subjects)
    if method == "deseq2":
        if layer != "rna":
            raise ValueError("method 'deseq2' is for the rna layer only")
        res = deseq2_compare(study, w, assigned, la, lb, change_from_baseline=change_from_baseline,
                      features=features, min_count=min_count, min_n=max(min_n, 2))
        return res.with_columns(
            defines_groups=pl.lit(False),
            fdr_family=pl.when(pl.col("q_value").is_not_null())
            .then(pl.lit(f"DESeq2 adjusted p within {w.label}")).otherwise(None))
    if method != "rank":
        raise ValueError("method must be 'rank' or 'deseq2'")
    group_of = dict(assigned.iter_rows())
    if layer == "rna":
        feats, subj, x, chosen = rna_matrix(study, assigned, w, features=features,
                                             change_from_baseline=change_from_baseline)
        if not subj or not feats:
            return pl.DataFrame(schema=RESULT_SCHEMA)
        days_used = chosen.get_column("day").to_numpy()
        lo, hi = int(days_used.min()), int(days_used.max())
        days = pl.DataFrame({"feature": feats, "days": f"day {lo}" if lo == hi else
                             f"days {lo} to {hi}"})
        picked = pl.DataFrame({
            "feature": np.repeat(feats, len(subj)), "subject_id": np.tile(subj, len(feats)),
            "group": np.tile([group_of[s] for s in subj], len(feats)),
            "value": x.ravel(), "day": np.tile(days_used, len(feats))}) \
            if len(subj) <= _VALUES_MAX_PATIENTS else None
    else:
        picked = picked_values(study, layer=layer, window=w, assigned=assigned, panel=panel,
                         change_from_baseline=change_from_baseline, features=features)
        if picked.height == 0:
            return pl.DataFrame(schema=RESULT_SCHEMA)
        feats, subj, x = _matrix(picked)
        days = (picked.group_by("feature").agg(pl.col("day").min().alias("lo"),
                                               pl.col("day").max().alias("hi"))
                .select("feature", pl.when(pl.col("lo") == pl.col("hi"))
                        .then(pl.format("day {}", pl.col("lo")))
                        .otherwise(pl.format("days {} to {}", pl.col("lo"), pl.col("hi")))
                        .alias("days")))
    in_a = np.array([group_of.get(s) == la for s in subj])
    in_b = np.array([group_of.get(s) == lb for s in subj])
    binary = np.array([f.endswith(PRESENT) for f in feats]) & (not change_from_baseline)
    res = compare_matrix(x, in_a=in_a, in_b=in_b, binary=binary, min_n=min_n,
                         exact_max_n=rules.exact_max_n)
    defining = defining_features(study, layer=layer, group_column=group_column, groups=groups,
                                 rules=rules)
    defines = np.array([f in defining for f in feats], dtype=bool)
    family = np.isfinite(res["p_value"]) & (~defines | rules.defining_in_fdr)
    q = st.bh(res["p_value"], family=family)
    fam_label = f"BH within {w.label}: {int(family.sum())} tests"
    with np.errstate(all="ignore"):
        if change_from_baseline:
            l2 = np.full(len(feats), np.nan)
        elif layer in LOG2_LAYERS:
            l2 = res["mean_a"] - res["mean_b"]
        else:
            pos = np.nanmin(np.where(np.isfinite(x), x, np.inf), axis=1) > 0
            l2 = np.where(pos, np.log2(res["mean_a"] / res["mean_b"]), np.nan)
    effect = np.where(binary, res["prop_diff"], res[effect_measure])
    if effect_measure == "hedges_g":
        # an undefined g is said, not left as a blank a reader takes for "no effect"
        note = np.where(binary, "", res["hedges_g_note"])
        res["reason"] = np.array([r if r and (not n or "fewer than" in n)
                                  else f"{r}; {n}" if r else n
                                  for r, n in zip(res["reason"], note, strict=True)],
                                 dtype=object)
    measure = np.where(binary, "difference in proportion",
                       "Hedges' g" if effect_measure == "hedges_g" else "Cliff's delta")
    # the values behind each row, as text, where a person can read them (small cohorts)
    vals = _fmt_values(picked) if picked is not None and len(subj) <= _VALUES_MAX_PATIENTS \
        else pl.DataFrame(schema={"feature": pl.String, "group": pl.String, "_v": pl.String})
    rule = w.describe() + ("; change from the baseline value" if change_from_baseline else "")

    def nan_to_none(a: np.ndarray) -> list:
        return [None if not np.isfinite(v) else float(v) for v in a]

    out = pl.DataFrame({
        "feature": feats, "n_group_a": res["n_a"].astype(np.int64),
        "n_group_b": res["n_b"].astype(np.int64), "effect": nan_to_none(effect),
        "effect_measure": measure.tolist(), "p_value": nan_to_none(res["p_value"]),
        "q_value": nan_to_none(q), "group_a": la, "group_b": lb,
        "mean_a": nan_to_none(res["mean_a"]), "mean_b": nan_to_none(res["mean_b"]),
        "median_a": nan_to_none(res["median_a"]), "median_b": nan_to_none(res["median_b"]),
        "log2fc": nan_to_none(l2), "hedges_g": nan_to_none(res["hedges_g"]),
        "cliffs_delta": nan_to_none(res["cliffs_delta"]),
        "test": [t or None for t in res["test"]], "reason": [r or None for r in res["reason"]],
        "note": _notes(_power_note(res["n_a"], res["n_b"], min_n), binary, defines,
                       in_fdr=rules.defining_in_fdr),
        "layer": layer, "window": w.label, "window_rule": rule,
        "change_from_baseline": change_from_baseline, "defines_groups": defines.tolist(),
        "fdr_family": [fam_label if f else None for f in family],
    }, strict=False)
    out = (out.join(days, on="feature", how="left")
           .join(vals.filter(pl.col("group") == la).select("feature", pl.col("_v")
                                                           .alias("values_a")),
                 on="feature", how="left")
           .join(vals.filter(pl.col("group") == lb).select("feature", pl.col("_v")
                                                           .alias("values_b")),
                 on="feature", how="left"))
    return sort_results(out.select(list(RESULT_SCHEMA)).cast(RESULT_SCHEMA))


def _matrix(picked: pl.DataFrame) -> tuple[list[str], list[str], np.ndarray]:
    """(features, subjects, features x subjects matrix with NaN where a value is missing)."""
    feats = picked.get_column("feature").unique().sort().to_list()
    subj = picked.get_column("subject_id").unique().sort().to_list()
    codes = picked.select(pl.col("feature").cast(pl.Enum(feats)).to_physical().alias("f"),
                          pl.col("subject_id").cast(pl.Enum(subj)).to_physical().alias("s"),
                          pl.col("value"))
    x = np.full((len(feats), len(subj)), np.nan)
    x[codes.get_column("f").to_numpy(), codes.get_column("s").to_numpy()] = \
        codes.get_column("value").to_numpy()
    return feats, subj, x


def _power_note(na: np.ndarray, nb: np.ndarray, min_n: int) -> list[str | None]:
    """A note where even perfectly separated groups could not reach p < 0.05."""
    out: list[str | None] = []
    for a, b in zip(na, nb, strict=True):
        smallest = st.smallest_p(int(a), int(b)) if a >= min_n and b >= min_n else 0.0
        out.append(f"n = {a} vs {b}: the smallest possible two-sided p is {smallest:.2g}"
                   if smallest > 0.05 else None)
    return out


def _notes(power: list[str | None], binary: np.ndarray, defines: np.ndarray, *,
           in_fdr: bool) -> list[str | None]:
    out = []
    for n, b, d in zip(power, binary, defines, strict=True):
        parts = []
        if d:
            parts.append(DEFINES_GROUPS + ("" if in_fdr else ": not in the FDR family"))
        if n and not b:
            parts.append(n)
        out.append("; ".join(parts) or None)
    return out


@derived_table("comparison", "Responders vs non-responders: one test per feature of a layer "
               "in a day window (n, effect, exact/permutation p, BH-FDR)",
               options={"layer": Option(str, "proteomics", "feature layer", LAYERS),
                        "window": Option(str, "D28", "baseline, D14, D28, M3, M6, M12 or "
                                                     "start:end (days)"),
                        "change_from_baseline": Option(bool, False,
                                                       "compare the change from baseline")})
def comparison_table(study: Study, *, layer: str = "proteomics", window: str = "D28",
                     change_from_baseline: bool = False, rules: Rules | None = None
                     ) -> pl.DataFrame:
    """`compare` with the default groups (responders vs non-responders); the FDR family
    follows the rule settings defining_in_fdr and fdr_across_windows."""
    return compare(study, layer=layer, window=window, change_from_baseline=change_from_baseline,
                   rules=rules)
