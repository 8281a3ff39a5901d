"""Small-cohort statistics, one implementation for every page (DESIGN.md section 1).

One job: the small-cohort tests and FDR every page uses (two groups, paired, correlation).

Two patient groups, one value per patient:

- two-sided Mann-Whitney U (Mann & Whitney 1947). With `exact_max_n` patients or fewer (default
  20) the p-value is exact: scipy's exact null distribution of U when there are no ties, else
  the exact permutation distribution of the rank sum over every split of the patients (Monte
  Carlo with 9,999 random splits when there are more than 20,000 splits; the splits are drawn
  from a fixed seed for each n and k, so the same values give the same p wherever they are
  tested). Above `exact_max_n`: the normal approximation with tie and continuity correction
  (scipy's "asymptotic");
- presence/absence: Fisher's exact test;
- effect sizes: Hedges' g (bias-corrected standardised mean difference; Hedges & Olkin 1985)
  and Cliff's delta (Cliff 1993), positive = higher in group A;
- repeated-measures correlation (rmcorr; Bakdash & Marusich 2017) for several samples per
  patient, where a Spearman or Pearson over all samples treats them as independent;
- Spearman's rho with a permutation p (every ordering up to 8 pairs, else 9,999 random
  pairings from a fixed seed; scipy's t approximation above SPEARMAN_PERMUTATION_MAX_N pairs);
- Benjamini-Hochberg FDR (Benjamini & Hochberg 1995; statsmodels `multipletests`) over a family
  the caller states (`bh`), with features left out of the family given no q.

Vectorised over features (rows of a features x patients matrix, NaN = missing), so a
comparison of 20,000 genes and the test of one exposure parameter share the code path; the
Kinetics and Compare pages give the same p for the same patients.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["EXACT_MAX_N", "MAX_SPLITS", "N_PERMUTATIONS", "SPEARMAN_PERMUTATION_MAX_N",
           "MannWhitney", "mann_whitney", "mann_whitney_rows", "effect_sizes", "fisher_rows",
           "spearman", "rmcorr", "RepeatedCorrelation", "bh", "smallest_p", "signed_rank_rows", "fisher_counts"]

EXACT_MAX_N = 20       # up to this many patients in a comparison: exact / permutation p
MAX_SPLITS = 20_000    # full enumeration of splits up to this many, else Monte Carlo
N_PERMUTATIONS = 9_999
SPEARMAN_PERMUTATION_MAX_N = 100   # pairs; a 9,999-permutation p costs < 0.1 s up to here


@dataclass(frozen=True)
class MannWhitney:
    """One two-sided Mann-Whitney test: U of group A, p, which p (test), n per group."""

    u: float | None
    p_value: float | None
    test: str
    n_a: int
    n_b: int

    def describe(self) -> str:
        if self.p_value is None:
            return f"n = {self.n_a} vs {self.n_b}: {self.test}"
        return f"U = {self.u:g}, p = {self.p_value:.3g} ({self.test}), n = {self.n_a} vs {self.n_b}"


def _has_ties(x: np.ndarray) -> np.ndarray:
    s = np.sort(x, axis=1)
    return (np.diff(s, axis=1) == 0).any(axis=1)


def _split_matrix(n: int, k: int, seed: int) -> tuple[np.ndarray, str]:
    """Indicator matrix (splits x n) of the patients put into group A under the null."""
    n_splits = math.comb(n, k)
    if n_splits <= MAX_SPLITS:
        m = np.zeros((n_splits, n))
        for i, combo in enumerate(itertools.combinations(range(n), k)):
            m[i, list(combo)] = 1.0
        return m, "exact"
    rng = np.random.default_rng([seed, n, k])
    perm = np.argsort(rng.random((N_PERMUTATIONS, n)), axis=1)[:, :k]
    m = np.zeros((N_PERMUTATIONS, n))
    np.put_along_axis(m, perm, 1.0, axis=1)
    return m, "monte carlo"


def _permutation_p(ranks: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, str]:
    """Two-sided permutation p of the rank sum of the first k columns (rows = features): twice
    the smaller one-sided p, capped at 1 (as scipy's `permutation_test` and exact MWU)."""
    n = ranks.shape[1]
    m, kind = _split_matrix(n, k, seed)
    observed = ranks[:, :k].sum(axis=1)
    out = np.empty(ranks.shape[0])
    chunk = max(1, 4_000_000 // m.shape[0])
    for s in range(0, ranks.shape[0], chunk):
        sums = ranks[s:s + chunk] @ m.T
        obs = observed[s:s + chunk, None]
        ge = (sums >= obs - 1e-9).sum(axis=1)
        le = (sums <= obs + 1e-9).sum(axis=1)
        if kind == "exact":
            one_sided = np.minimum(ge, le) / m.shape[0]
        else:
            one_sided = (np.minimum(ge, le) + 1) / (m.shape[0] + 1)
        out[s:s + chunk] = np.minimum(2 * one_sided, 1.0)
    return out, kind


def _tie_term(xx: np.ndarray) -> np.ndarray:
    """Per row, the sum over groups of tied values of t^3 - t (NaN never ties)."""
    srt = np.sort(xx, axis=1)
    f, n = srt.shape
    if n == 0:
        return np.zeros(f)
    starts = np.ones((f, n), bool)
    starts[:, 1:] = ~(srt[:, 1:] == srt[:, :-1])
    lengths = np.diff(np.append(np.flatnonzero(starts.ravel()), f * n))
    row = np.repeat(np.arange(f), starts.sum(axis=1))
    return np.bincount(row, weights=lengths.astype(float) ** 3 - lengths, minlength=f)


def _asymptotic_p(u: np.ndarray, tie: np.ndarray, na: np.ndarray, nb: np.ndarray
                  ) -> np.ndarray:
    """Normal approximation with tie and continuity correction (as scipy's "asymptotic")."""
    n = na + nb
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.sqrt(na * nb / 12 * ((n + 1) - tie / (n * (n - 1))))
        z = (np.abs(u - na * nb / 2) - 0.5) / sigma
        p = np.where(sigma > 0, 2 * stats.norm.sf(np.maximum(z, 0)), 1.0)
    return np.minimum(p, 1.0)


def _u_statistic(x: np.ndarray, in_a: np.ndarray, in_b: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(U of group A, n_a, n_b, the values of both groups with NaN elsewhere) per row."""
    na = np.isfinite(x[:, in_a]).sum(axis=1)
    nb = np.isfinite(x[:, in_b]).sum(axis=1)
    xx = np.where((in_a | in_b)[None, :], x, np.nan)
    r = stats.rankdata(xx, axis=1, nan_policy="omit") if xx.size else xx.astype(float)
    ra = np.nansum(np.where(in_a[None, :], r, 0.0), axis=1)
    return ra - na * (na + 1) / 2, na, nb, xx


def mann_whitney_rows(x: np.ndarray, *, in_a: np.ndarray, in_b: np.ndarray,
                      rows: np.ndarray | None = None, exact_max_n: int = EXACT_MAX_N,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-sided Mann-Whitney per row of `x` (features x patients, NaN = missing) between the
    patients flagged `in_a` and `in_b`, for the rows flagged in `rows` (default: every row
    with at least one value in each group). Returns (U of group A, p, test name) arrays; rows
    not tested have p NaN and test "".

    Up to `exact_max_n` patients the p is exact (scipy's exact U distribution without ties,
    every split of the patients with ties, random splits from a fixed seed above MAX_SPLITS
    splits); above, the normal approximation with tie and continuity correction."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    in_a, in_b = np.asarray(in_a, bool), np.asarray(in_b, bool)
    f = x.shape[0]
    u, na, nb, xx = _u_statistic(x, in_a, in_b)
    todo = (na > 0) & (nb > 0) if rows is None else np.asarray(rows, bool) & (na > 0) & (nb > 0)
    p = np.full(f, np.nan)
    test = np.full(f, "", dtype=object)
    small = todo & (na + nb <= exact_max_n)
    large = todo & ~small
    if large.any():
        p[large] = _asymptotic_p(u[large], _tie_term(xx[large]), na[large], nb[large])
        test[large] = "Mann-Whitney (normal approx.)"
    if small.any():
        # rows sharing the same missing pattern form one dense block
        valid = np.isfinite(x) & (in_a | in_b)[None, :]
        idx = np.flatnonzero(small)
        keys = [valid[i].tobytes() for i in idx]
        for key in dict.fromkeys(keys):
            block = idx[[k == key for k in keys]]
            cols_a = np.flatnonzero(valid[block[0]] & in_a)
            cols_b = np.flatnonzero(valid[block[0]] & in_b)
            da, db = x[np.ix_(block, cols_a)], x[np.ix_(block, cols_b)]
            both = np.concatenate([da, db], axis=1)
            ties = _has_ties(both)
            if (~ties).any():
                res = stats.mannwhitneyu(da[~ties], db[~ties], axis=1, method="exact",
                                         alternative="two-sided")
                p[block[~ties]] = res.pvalue
                test[block[~ties]] = "Mann-Whitney exact"
            if ties.any():
                pt, kind = _permutation_p(stats.rankdata(both[ties], axis=1), len(cols_a), seed)
                p[block[ties]] = pt
                test[block[ties]] = "permutation (all splits)" if kind == "exact" else \
                    f"permutation ({N_PERMUTATIONS} random splits)"
    return u, p, test


def mann_whitney(a: np.ndarray, b: np.ndarray, *, exact_max_n: int = EXACT_MAX_N,
                 seed: int = 0) -> MannWhitney:
    """Two-sided Mann-Whitney U of two samples (NaN dropped), as `mann_whitney_rows`."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return MannWhitney(None, None, "Mann-Whitney: needs both groups", len(a), len(b))
    x = np.concatenate([a, b])[None, :]
    in_a = np.arange(x.shape[1]) < len(a)
    u, p, test = mann_whitney_rows(x, in_a=in_a, in_b=~in_a, exact_max_n=exact_max_n,
                                   seed=seed)
    return MannWhitney(float(u[0]), float(p[0]), str(test[0]), len(a), len(b))


def effect_sizes(x: np.ndarray, *, in_a: np.ndarray, in_b: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """Per row: n_a, n_b, mean_a, mean_b, median_a, median_b, hedges_g, hedges_g_note,
    cliffs_delta (2 U_a / (n_a n_b) - 1).

    Hedges' g is defined only when both groups have 2 values and some spread within EACH group:
    a group whose values are all equal (e.g. every patient below the LLOQ) makes the pooled SD
    the other group's alone, and g of -8 or +20 then reads as an enormous effect that is an
    artefact of the missing spread. Such rows get g = NaN and `hedges_g_note` says why."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    in_a, in_b = np.asarray(in_a, bool), np.asarray(in_b, bool)
    xa, xb = x[:, in_a], x[:, in_b]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        u, na, nb, _ = _u_statistic(x, in_a, in_b)
        mean_a, mean_b = np.nanmean(xa, axis=1), np.nanmean(xb, axis=1)
        med_a, med_b = np.nanmedian(xa, axis=1), np.nanmedian(xb, axis=1)
        va, vb = np.nanvar(xa, axis=1, ddof=1), np.nanvar(xb, axis=1, ddof=1)
        sp = np.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
        j = 1 - 3 / (4 * (na + nb) - 9)
        enough = (na >= 2) & (nb >= 2)
        flat_a, flat_b = enough & ~(va > 0), enough & ~(vb > 0)
        g = np.where(enough & ~flat_a & ~flat_b, (mean_a - mean_b) / sp * j, np.nan)
        delta = np.where((na > 0) & (nb > 0), 2 * u / (na * nb) - 1, np.nan)
    note = np.full(x.shape[0], "", dtype=object)
    note[~enough] = "Hedges' g not defined: fewer than 2 values in a group"
    note[flat_a & flat_b] = "Hedges' g not defined: no spread within either group"
    note[flat_a & ~flat_b] = "Hedges' g not defined: no spread within group A (all values equal)"
    note[flat_b & ~flat_a] = "Hedges' g not defined: no spread within group B (all values equal)"
    return {"n_a": na, "n_b": nb, "mean_a": mean_a, "mean_b": mean_b, "median_a": med_a,
            "median_b": med_b, "hedges_g": g, "hedges_g_note": note, "cliffs_delta": delta}


def fisher_rows(x: np.ndarray, *, in_a: np.ndarray, in_b: np.ndarray, rows: np.ndarray
                ) -> np.ndarray:
    """Two-sided Fisher exact p per flagged row of a 0/1 matrix (NaN = missing)."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    xa, xb = x[:, np.asarray(in_a, bool)], x[:, np.asarray(in_b, bool)]
    na, nb = np.isfinite(xa).sum(axis=1), np.isfinite(xb).sum(axis=1)
    p = np.full(x.shape[0], np.nan)
    for i in np.flatnonzero(rows):
        a1, b1 = np.nansum(xa[i]), np.nansum(xb[i])
        _, p[i] = stats.fisher_exact([[a1, na[i] - a1], [b1, nb[i] - b1]])
    return p


def spearman(x: np.ndarray, y: np.ndarray, *,
             permutation_max_n: int = SPEARMAN_PERMUTATION_MAX_N
             ) -> tuple[float | None, float | None, str]:
    """Spearman's rho of paired values (pairs with a NaN dropped) and a two-sided p: exact over
    every ordering up to 8 pairs, 9,999 random pairings (seed 0) up to `permutation_max_n`,
    scipy's t approximation above. Returns (rho, p, method); rho and p are None with fewer than
    3 pairs or a constant variable (method says which)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        return None, None, "n < 3"
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None, "constant values"
    if len(x) > permutation_max_n:
        res = stats.spearmanr(x, y)
        return float(res.statistic), float(res.pvalue), "Spearman rho, asymptotic p"
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx = (rx - rx.mean()) / np.sqrt(((rx - rx.mean()) ** 2).sum())

    def stat(ry_perm: np.ndarray, axis: int = -1) -> np.ndarray:
        c = ry_perm - ry_perm.mean(axis=axis, keepdims=True)
        return (c * rx).sum(axis=axis) / np.sqrt((c ** 2).sum(axis=axis))

    n_resamples = np.inf if len(x) <= 8 else N_PERMUTATIONS
    res = stats.permutation_test((ry,), stat, permutation_type="pairings", vectorized=True,
                                 n_resamples=n_resamples, rng=np.random.default_rng(0))
    return float(res.statistic), float(res.pvalue), "Spearman rho, permutation p"


def bh(p: np.ndarray, *, family: np.ndarray | None = None) -> np.ndarray:
    """Benjamini-Hochberg q over the finite p-values in `family` (a boolean mask; default all).
    Rows outside the family, or without a p, get NaN."""
    p = np.asarray(p, dtype=float)
    ok = np.isfinite(p) if family is None else np.isfinite(p) & np.asarray(family, bool)
    q = np.full(p.shape, np.nan)
    if ok.any():
        from statsmodels.stats.multitest import multipletests

        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided exact Mann-Whitney p that n_a vs n_b patients can give (perfect
    separation): 2 / C(n_a + n_b, n_a)."""
    if n_a <= 0 or n_b <= 0:
        return 1.0
    return min(1.0, 2 / math.comb(int(n_a + n_b), int(n_a)))


# ---- paired: post vs pre in the same patients (composition, clone fates) -----------------------
def signed_rank_rows(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Wilcoxon signed-rank test per row of paired differences `d` (features x
    patients, NaN = patient without both values; Wilcoxon 1945). Zero differences are dropped
    (Wilcoxon's convention). The p is exact, by every sign flip of the patients' ranks (2^n
    flips, n <= 16), ties included; above 16 pairs, scipy's normal approximation. Returns
    (n pairs, p); p is NaN with no non-zero difference."""
    d = np.atleast_2d(np.asarray(d, dtype=float))
    n = np.zeros(d.shape[0], dtype=int)
    p = np.full(d.shape[0], np.nan)
    for i, row in enumerate(d):
        x = row[np.isfinite(row)]
        n[i] = len(x)
        x = x[x != 0]
        if len(x) == 0:
            continue
        if len(x) > 16:
            p[i] = float(stats.wilcoxon(x, method="approx").pvalue)
            continue
        r = stats.rankdata(np.abs(x))
        observed = r[x > 0].sum()
        signs = np.array(list(itertools.product((0.0, 1.0), repeat=len(x))))
        sums = signs @ r
        ge = (sums >= observed - 1e-9).mean()
        le = (sums <= observed + 1e-9).mean()
        p[i] = min(1.0, 2 * min(ge, le))
    return n, p


def fisher_counts(a: np.ndarray, *, n_a: np.ndarray, b: np.ndarray, n_b: np.ndarray
                  ) -> np.ndarray:
    """Two-sided Fisher exact p per row of counts: `a` of `n_a` in one sample against `b` of
    `n_b` in the other (e.g. one clone's cells vs the rest of the repertoire at two
    timepoints). The p of scipy's `fisher_exact` (the tables at most as probable as the one
    observed, relative tolerance 1e-7), computed for every row at once: under the null `a` is
    hypergeometric, its pmf is unimodal, so the far tail starts where a binary search finds
    the pmf falling to the observed one. Identical rows are computed once."""
    rows = np.column_stack([np.asarray(x, dtype=np.int64) for x in (a, n_a, b, n_b)])
    if rows.shape[0] == 0:
        return np.zeros(0)
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    x, na, y, nb = (uniq[:, i] for i in range(4))
    total, k = na + nb, x + y
    dist = stats.hypergeom(total, na, k)
    lo, hi = np.maximum(0, k - nb), np.minimum(k, na)
    mode = np.floor((k + 1) * (na + 1) / (total + 2)).astype(np.int64)
    mode = np.clip(mode, lo, hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_obs = dist.logpmf(x) + np.log1p(1e-7)
        left = x <= mode
        # observed on the left: far tail on the right, from the first x' >= mode with
        # pmf(x') <= pmf(obs); observed on the right: the last x' <= mode with pmf <= obs
        # search bounds (exclusive); `mode` is the upper mode, so the pmf falls strictly
        # right of it and rises (ties only between the two modes) left of it
        a_lo = np.where(left, np.maximum(mode, x + 1) - 1, lo - 1)
        a_hi = np.where(left, hi + 1, np.minimum(mode, x - 1) + 1)
        for _ in range(64):
            if not (a_hi - a_lo > 1).any():
                break
            mid = (a_lo + a_hi) // 2
            below = dist.logpmf(mid) <= log_obs
            # left case: find the smallest mid with below (monotone decreasing right of mode)
            # right case: find the largest mid with below (monotone increasing left of mode)
            move_hi = np.where(left, below, ~below)
            a_hi = np.where((a_hi - a_lo > 1) & move_hi, mid, a_hi)
            a_lo = np.where((a_hi - a_lo > 1) & ~move_hi, mid, a_lo)
        # each tail from the one function it needs, on the rows that need it (the
        # hypergeometric cdf and sf are the cost here)
        p = np.zeros(len(x))
        right = ~left
        far_r = left & (a_hi <= hi)
        far_l = right & (a_lo >= lo)
        for rows, fn, at in ((left, "cdf", x), (right, "sf", x - 1), (far_r, "sf", a_hi - 1),
                             (far_l, "cdf", a_lo)):
            if rows.any():
                sub = stats.hypergeom(total[rows], na[rows], k[rows])
                p[rows] += getattr(sub, fn)(at[rows])
    p = np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0)
    return p[np.asarray(inverse).ravel()]


@dataclass(frozen=True)
class RepeatedCorrelation:
    """Repeated-measures correlation (Bakdash & Marusich 2017, Front Psychol 8:456): the common
    within-patient slope of y on x, from an ANCOVA with patient as a factor. r_rm is the
    correlation of the within-patient deviations; its p has N - k - 1 degrees of freedom
    (N samples, k patients), so many samples of few patients do not pass for many patients."""

    r: float | None
    p_value: float | None
    dof: int
    n: int
    n_subjects: int
    method: str = "repeated-measures correlation (rmcorr)"


def rmcorr(x: np.ndarray, y: np.ndarray, *, subject: np.ndarray) -> RepeatedCorrelation:
    """Repeated-measures correlation of paired values `x`, `y` grouped by `subject` (pairs with a
    NaN dropped; patients with one sample carry no within-patient information and are dropped).
    r = sum(dx dy) / sqrt(sum dx^2 sum dy^2) with dx, dy the deviations from each patient's
    mean; t = r sqrt(dof / (1 - r^2)), dof = N - k - 1 (Bakdash & Marusich 2017, eq. 1-3)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    s = np.asarray(subject, dtype=object)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, s = x[ok], y[ok], s[ok]
    keys, inv, counts = np.unique(s.astype(str), return_inverse=True, return_counts=True)
    keep = counts[inv] >= 2
    x, y, inv = x[keep], y[keep], inv[keep]
    n, k = len(x), int((counts >= 2).sum())
    dof = n - k - 1
    if k == 0 or dof < 1:
        return RepeatedCorrelation(None, None, max(dof, 0), n, k, "rmcorr: too few samples "
                                   "per patient (needs N - k - 1 >= 1)")
    mx = np.bincount(inv, weights=x) / np.bincount(inv)
    my = np.bincount(inv, weights=y) / np.bincount(inv)
    dx, dy = x - mx[inv], y - my[inv]
    sxx, syy = float((dx ** 2).sum()), float((dy ** 2).sum())
    if sxx <= 0 or syy <= 0:
        return RepeatedCorrelation(None, None, dof, n, k,
                                   "rmcorr: no within-patient variation")
    r = float(np.clip((dx * dy).sum() / np.sqrt(sxx * syy), -1.0, 1.0))
    if abs(r) >= 1:
        p = 0.0
    else:
        t = r * np.sqrt(dof / (1 - r * r))
        p = float(2 * stats.t.sf(abs(t), dof))
    return RepeatedCorrelation(r, p, dof, n, k)
