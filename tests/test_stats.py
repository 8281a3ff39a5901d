"""Small-cohort statistics (analysis.stats): one Mann-Whitney for every page, checked against
scipy and by hand, and the same p on the Kinetics and Compare pages for the same patients."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from analysis import stats as st

R = [10.0, 12, 15, 15, 18, 20, 22, 25]     # 8 responders
N = [5.0, 8, 9, 11, 12, 14, 15, 16]        # 8 non-responders


def test_exact_without_ties_is_scipys_exact():
    a, b = [1.0, 4, 7, 9], [2.0, 3, 5]
    mw = st.mann_whitney(a, b)
    ref = sps.mannwhitneyu(a, b, method="exact")
    assert mw.u == ref.statistic and mw.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert mw.test == "Mann-Whitney exact" and (mw.n_a, mw.n_b) == (4, 3)


def test_ties_exact_over_every_split():
    """R vs N have ties (12, 15). Ranks of R sum to 88.5 (U = 88.5 - 36 = 52.5); over all
    C(16, 8) = 12,870 splits, 193 have a rank sum >= 88.5 and 12,705 <= 88.5: two-sided
    p = 2 * 193 / 12,870 = 0.029992. scipy's permutation method with 9,999 resamples draws at
    random here (12,870 > 9,999): 0.0306 with seed 0, which the Kinetics page used to show."""
    mw = st.mann_whitney(R, N)
    assert mw.u == 52.5 and mw.p_value == pytest.approx(2 * 193 / 12870, rel=1e-12)
    assert mw.test == "permutation (all splits)"
    old = sps.mannwhitneyu(R, N, method=sps.PermutationMethod(
        n_resamples=9999, rng=np.random.default_rng(0))).pvalue
    assert old != pytest.approx(mw.p_value, rel=1e-6)


def test_large_groups_use_the_normal_approximation():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=12).round(1), rng.normal(0.5, size=13).round(1)
    mw = st.mann_whitney(a, b)
    ref = sps.mannwhitneyu(a, b, method="asymptotic")
    assert mw.test == "Mann-Whitney (normal approx.)"
    assert mw.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert st.mann_whitney(a, b, exact_max_n=30).test != mw.test


def test_monte_carlo_p_depends_only_on_the_values():
    """10 vs 10 with ties: 184,756 splits, so random splits. The same values give the same p
    alone or among other features (the splits come from a seed fixed per n and k)."""
    a = [1.0, 2, 2, 3, 4, 5, 6, 7, 8, 9]
    b = [2.0, 3, 4, 4, 5, 6, 7, 8, 9, 10]
    alone = st.mann_whitney(a, b).p_value
    x = np.array([[*a, *b], [*b, *a], list(range(20))], float)
    in_a = np.arange(20) < 10
    _, p, test = st.mann_whitney_rows(x[[1, 0, 2]], in_a=in_a, in_b=~in_a)
    assert test[1].startswith("permutation (9999")
    assert p[1] == alone


def test_bh_over_a_stated_family():
    """p = 0.01, 0.04, 0.03 (third out of the family): BH over the first two,
    q = (0.02, 0.04); the third has no q."""
    q = st.bh(np.array([0.01, 0.04, 0.03, np.nan]), family=np.array([True, True, False, True]))
    assert q[:2] == pytest.approx([0.02, 0.04]) and np.isnan(q[2]) and np.isnan(q[3])


def test_smallest_p():
    assert st.smallest_p(3, 2) == pytest.approx(0.2)
    assert st.smallest_p(3, 3) == pytest.approx(0.1)


def test_same_p_on_the_kinetics_and_compare_pages(write_study):
    """16 patients, 8 responders (response_override CR) and 8 non-responders (NR), CAR_QPCR 0
    on day 0 and the values R / N on day 28. Kinetics: Cmax = the day-28 value, tested between
    the response groups (exposure-response). Compare: the measurement CAR_QPCR in window D28.
    Both give the exact p 2 * 193 / 12,870 (see test_ties_exact_over_every_split); before, the
    Kinetics page drew 9,999 random splits (0.0306) and Compare enumerated all of them."""
    from analysis import differential as dif
    from analysis import kinetics as kin
    from analysis.cohort import response_groups
    from analysis.toxicity import crs_table
    from data_loaders import load_study

    ids = [f"R{i}" for i in range(8)] + [f"N{i}" for i in range(8)]
    patients = "subject_id,response_override\n" + "".join(
        f"{s},{'CR' if s[0] == 'R' else 'NR'}\n" for s in ids)
    meas = "subject_id,day,analyte,value,unit,lloq\n" + "".join(
        f"{s},0,CAR_QPCR,0,copies/ug gDNA,1\n{s},28,CAR_QPCR,{v},copies/ug gDNA,1\n"
        for s, v in zip(ids, R + N, strict=True))
    study = load_study(write_study(patients=patients, measurements=meas))
    params = kin.kinetics_table(study)
    er = kin.exposure_response(params, groups=response_groups(study), crs=crs_table(study))
    kin_p = kin.exposure_tests(er, parameters=("cmax",)).filter(
        pl.col("versus") == "response_group").item(0, "p_value")
    cmp = dif.compare(study, layer="measurements", window="D28")
    cmp_p = cmp.filter(pl.col("feature") == "CAR_QPCR").item(0, "p_value")
    assert kin_p == cmp_p == pytest.approx(2 * 193 / 12870, rel=1e-12)


def _rmcorr_by_ancova(x, y, s):
    """rmcorr as Bakdash & Marusich define it: the ANCOVA y ~ patient + x; r_rm =
    sign(slope) sqrt(SS_x / (SS_x + SS_error))."""
    levels = sorted(set(s))
    dummies = np.array([[1.0 if v == lv else 0.0 for lv in levels] for v in s])
    full = np.column_stack([dummies, x])
    res_full = y - full @ np.linalg.lstsq(full, y, rcond=None)[0]
    res_red = y - dummies @ np.linalg.lstsq(dummies, y, rcond=None)[0]
    ss_err, ss_x = (res_full ** 2).sum(), (res_red ** 2).sum() - (res_full ** 2).sum()
    slope = np.linalg.lstsq(full, y, rcond=None)[0][-1]
    r = np.sign(slope) * np.sqrt(ss_x / (ss_x + ss_err))
    dof = len(x) - len(levels) - 1
    t = r * np.sqrt(dof / (1 - r ** 2))
    return r, 2 * sps.t.sf(abs(t), dof), dof


def test_rmcorr_matches_the_ancova_definition():
    rng = np.random.default_rng(3)
    s = np.repeat(["A", "B", "C", "D", "E"], [12, 11, 12, 10, 12])
    offset = {k: v for k, v in zip("ABCDE", [0, 2, 4, 6, 8], strict=True)}
    x = rng.normal(size=len(s)) + np.array([offset[v] for v in s])
    y = 0.4 * x + rng.normal(size=len(s)) + np.array([offset[v] for v in s])
    got = st.rmcorr(x, y, subject=s)
    r, p, dof = _rmcorr_by_ancova(x, y, s)
    assert got.dof == dof == 57 - 5 - 1
    assert got.n == 57 and got.n_subjects == 5
    assert got.r == pytest.approx(r, abs=1e-9)
    assert got.p_value == pytest.approx(p, rel=1e-6)


def test_rmcorr_does_not_read_patient_differences_as_a_correlation():
    # 5 patients, 11 samples each: x and y unrelated within each patient, but the patients'
    # levels differ together. Pooled Spearman is "significant"; rmcorr is not.
    rng = np.random.default_rng(7)
    s = np.repeat(list("ABCDE"), 11)
    level = np.repeat([0.0, 1.0, 2.0, 3.0, 4.0], 11)
    x, y = level + rng.normal(0, 0.3, 55), level + rng.normal(0, 0.3, 55)
    assert sps.spearmanr(x, y).pvalue < 1e-6
    got = st.rmcorr(x, y, subject=s)
    assert abs(got.r) < 0.3 and got.p_value > 0.05


def test_rmcorr_without_repeated_samples_is_not_defined():
    got = st.rmcorr(np.array([1.0, 2, 3]), np.array([2.0, 1, 3]), subject=np.array(["A", "B", "C"]))
    assert got.r is None and got.p_value is None and "too few" in got.method


def test_hedges_g_from_a_group_without_spread_is_not_defined():
    # group A all equal (e.g. every value at the LLOQ), group B with spread: g would be huge
    x = np.array([[1.0, 1.0, 1.0, 2.0, 3.1, 4.2],
                  [1.0, 1.5, 2.0, 2.0, 3.1, 4.2],
                  [1.0, 1.0, 1.0, 5.0, 5.0, 5.0]])
    in_a = np.array([True, True, True, False, False, False])
    eff = st.effect_sizes(x, in_a=in_a, in_b=~in_a)
    assert np.isnan(eff["hedges_g"][0]) and "group A" in eff["hedges_g_note"][0]
    assert np.isfinite(eff["hedges_g"][1]) and eff["hedges_g_note"][1] == ""
    assert np.isnan(eff["hedges_g"][2]) and "either group" in eff["hedges_g_note"][2]
