"""Tests for the seeded synthetic cohort (sample_data.generate) and the committed demo study.

Small cohorts are generated into tmp_path; the committed demo under sample_data/demo is checked
for the documented truths (sample_data/README.md) that later analyses rely on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sample_data.generate import ISG_GENES, generate_study, main

DEMO = Path(__file__).resolve().parents[1] / "sample_data" / "demo"
CSV_FILES = ("patients.csv", "measurements.csv", "events.csv", "responses.csv", "samples.csv",
             "proteomics.csv", "rna_counts.csv", "mutations.csv", "tcr.csv")
COLUMNS = {
    "patients.csv": ["subject_id", "age", "sex", "diagnosis", "infusion_date", "dose_per_kg",
                     "weight_kg", "prior_therapy", "pnh_clone_pct", "disease_duration_months",
                     "marrow_cellularity_pct", "last_contact_day", "death_day", "progression_day",
                     "hsct_day", "response_override"],
    "measurements.csv": ["subject_id", "day", "analyte", "value", "unit", "panel", "lloq",
                         "tissue", "sample_id"],
    "events.csv": ["subject_id", "day", "end_day", "category", "term", "grade", "product",
                   "units"],
    "responses.csv": ["subject_id", "day", "response", "criteria", "assessor"],
    "samples.csv": ["sample_id", "subject_id", "day", "timepoint", "tissue", "assay", "file"],
    "proteomics.csv": ["sample_id", "feature", "value", "uniprot", "lod", "panel", "qc_warning"],
    "mutations.csv": ["sample_id", "gene", "vaf", "variant", "depth", "classification"],
    "tcr.csv": ["sample_id", "junction_aa", "count", "v_call", "j_call", "productive", "locus"],
}
EVENT_CATEGORIES = {"infusion", "lymphodepletion", "transfusion", "crs", "icans", "infection",
                    "adverse_event", "growth_factor", "hsct", "progression", "death",
                    "medication"}
UNITS = {"WBC": "10^9/L", "ANC": "10^9/L", "ALC": "10^9/L", "AMC": "10^9/L", "PLT": "10^9/L",
         "RETIC": "10^9/L", "HGB": "g/L", "CRP": "mg/L", "FERRITIN": "ng/mL", "LDH": "U/L",
         "IL6": "pg/mL", "IFNG": "pg/mL", "IL10": "pg/mL", "IL2": "pg/mL", "TNFA": "pg/mL",
         "IL2RA": "pg/mL", "CAR_QPCR": "copies/ug gDNA", "CAR_PCT": "%", "CAR_ABS": "cells/uL",
         "CD7NEG_T_PCT": "%", "NK_ABS": "cells/uL", "CD4_ABS": "cells/uL", "CD8_ABS": "cells/uL",
         "B_ABS": "cells/uL", "TEMP": "C", "SBP": "mmHg", "SPO2": "%", "O2_LPM": "L/min",
         "VASOPRESSORS": "count"}
RANK = {"NR": 0, "PR": 1, "CR": 2}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_study(tmp_path_factory.mktemp("small"), patients=8, cells=3000, seed=11)


def _read(folder: Path, name: str) -> pl.DataFrame:
    return pl.read_csv(folder / name, infer_schema_length=None)


def _best(folder: Path) -> dict[str, str]:
    r = _read(folder, "responses.csv").with_columns(k=pl.col("response").replace_strict(RANK))
    best = r.group_by("subject_id").agg(pl.col("k").max())
    inv = {v: k for k, v in RANK.items()}
    return {s: inv[k] for s, k in best.iter_rows()}


def _cbc_wide(folder: Path) -> pl.DataFrame:
    m = _read(folder, "measurements.csv").filter(pl.col("panel") == "cbc")
    m = m.with_columns(value=pl.when(pl.col("unit") == "g/dL").then(pl.col("value") * 10)
                       .otherwise(pl.col("value")))
    return m.pivot(on="analyte", index=["subject_id", "day"], values="value")


# --- any cohort -----------------------------------------------------------------------------


def test_same_seed_same_bytes(small: Path, tmp_path: Path) -> None:
    again = generate_study(tmp_path / "again", patients=8, cells=3000, seed=11)
    names = [*CSV_FILES, "study.toml", "cell_receptors.tsv",
             *(f"flow/{p.name}" for p in (small / "flow").glob("*.fcs"))]
    assert len(names) > len(CSV_FILES) + 1
    for name in names:
        assert (small / name).read_bytes() == (again / name).read_bytes(), name


def test_other_seed_differs(small: Path, tmp_path: Path) -> None:
    other = generate_study(tmp_path / "other", patients=8, cells=500, seed=12)
    assert (small / "measurements.csv").read_bytes() != (other / "measurements.csv").read_bytes()


@pytest.mark.parametrize("folder", ["small", "demo"])
def test_columns(folder: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue("small") if folder == "small" else DEMO
    for name, cols in COLUMNS.items():
        assert _read(path, name).columns == cols, name
    rna = _read(path, "rna_counts.csv")
    assert rna.columns[0] == "gene" and rna.height >= 2000
    rna_samples = _read(path, "samples.csv").filter(pl.col("assay") == "rna")["sample_id"]
    assert rna.columns[1:] == rna_samples.to_list()
    assert all(rna.schema[c].is_integer() for c in rna.columns[1:])
    toml = (path / "study.toml").read_text()
    assert 'id = "NCT07139600-DEMO"' in toml and "synthetic = true" in toml


def test_vocabulary(small: Path) -> None:
    m = _read(small, "measurements.csv")
    units = dict(m.filter(pl.col("subject_id") != "SAA-002").select("analyte", "unit").unique()
                 .iter_rows())
    assert units == UNITS
    assert set(m["tissue"]) == {"blood"}
    car = m.filter(pl.col("panel") == "car_t")
    assert car["lloq"].null_count() == 0
    assert dict(car.select("analyte", "lloq").unique().iter_rows()) == {
        "CAR_QPCR": 50.0, "CAR_PCT": 0.1, "CAR_ABS": 1.0}
    e = _read(small, "events.csv")
    assert set(e["category"]) <= EVENT_CATEGORIES
    for cat, term, day, end in (("lymphodepletion", "Fludarabine/cyclophosphamide", -5, -3),
                                ("infusion", "CD7 CAR-T", 0, 0)):
        rows = e.filter(pl.col("category") == cat)
        assert rows["subject_id"].sort().to_list() == [f"SAA-{i:03d}" for i in range(1, 9)]
        assert set(rows["term"]) == {term} and set(rows["day"]) == {day}
        assert set(rows["end_day"]) == {end}
    tr = e.filter(pl.col("category") == "transfusion")
    assert set(tr["product"]) == {"RBC", "PLT"} and set(tr["units"]) <= {1, 2}
    s = _read(small, "samples.csv")
    assert s["sample_id"].is_unique().all()
    assert set(s["timepoint"]) <= {"Screening", "D14", "D28", "M3", "M6", "M12"}
    assert s.select("subject_id", "timepoint", "assay").is_unique().all()
    assert set(s.filter(pl.col("assay") == "scrna")["timepoint"]) == {"Screening", "D28", "M3"}
    assert set(s.filter(pl.col("assay") == "flow_fcs")["timepoint"]) == {"Screening", "D28"}
    assert s.filter(pl.col("assay") != "flow_fcs")["file"].null_count() == s.height - s.filter(
        pl.col("assay") == "flow_fcs").height


def test_medications_follow_what_they_treat(small: Path) -> None:
    e = _read(small, "events.csv")
    med = e.filter(pl.col("category") == "medication")
    assert set(med["product"]) <= {"tocilizumab", "corticosteroid", "ciclosporin", "tpo_ra",
                                   "g_csf", "anti_infective", "other"}
    crs = e.filter(pl.col("category") == "crs")
    toci = med.filter(pl.col("product") == "tocilizumab")
    # tocilizumab for every grade >= 2 CRS, on a CRS day, never for grade 1
    assert set(toci["subject_id"]) == set(crs.filter(pl.col("grade") >= 2)["subject_id"])
    first = toci.group_by("subject_id").agg(pl.col("day").min().alias("given")) \
        .join(crs.select("subject_id", "day", "end_day"), on="subject_id")
    assert ((first["given"] >= first["day"]) & (first["given"] <= first["end_day"])).all()
    steroid = set(med.filter(pl.col("product") == "corticosteroid")["subject_id"])
    assert set(crs.filter(pl.col("grade") >= 3)["subject_id"]) <= steroid
    # an anti-infective covers each treated infection
    inf = e.filter(pl.col("category") == "infection")
    treated = inf.join(med.filter((pl.col("product") == "anti_infective")
                                  & ~pl.col("term").str.contains("prophylaxis")),
                       on=["subject_id", "day"])
    assert inf.height > 0 and treated.height == inf.height
    assert (med["end_day"] >= med["day"]).all()


def test_baseline_meets_saa_criteria(small: Path) -> None:
    for folder in (small, DEMO):
        pts = _read(folder, "patients.csv")
        w = _cbc_wide(folder).filter(pl.col("day") < -9)  # screening visit
        assert w.height == pts.height
        assert (w["ANC"] < 0.5).all() and (w["PLT"] < 20).all() and (w["RETIC"] < 60).all()
        vsaa = pts.filter(pl.col("diagnosis") == "vSAA")["subject_id"]
        assert (w.filter(pl.col("subject_id").is_in(vsaa.implode()))["ANC"] < 0.2).all()
        assert (pts["marrow_cellularity_pct"] < 25).all()


def test_responses_follow_nih_rule_and_hsct_censoring(small: Path) -> None:
    for folder in (small, DEMO):
        r = _read(folder, "responses.csv").join(_cbc_wide(folder), on=["subject_id", "day"])
        severe = ((r["ANC"] < 0.5).cast(int) + (r["PLT"] < 20).cast(int)
                  + (r["RETIC"] < 60).cast(int)) >= 2
        cr = (r["ANC"] >= 1.0) & (r["HGB"] >= 100) & (r["PLT"] >= 100)
        expect = np.where(cr, "CR", np.where(severe, "NR", "PR"))
        assert r["response"].to_list() == expect.tolist()
        assert set(r["day"]) <= {28, 90, 180, 365} and set(r["criteria"]) == {"NIH"}
        pts = _read(folder, "patients.csv").filter(pl.col("hsct_day").is_not_null())
        late = r.join(pts, on="subject_id").filter(pl.col("day") >= pl.col("hsct_day"))
        assert late.height == 0


def test_vitals_agree_with_recorded_crs_grade(small: Path) -> None:
    """ASTCT 2019: fever >=38; grade 2 hypotension w/o pressors or O2 <=6 L/min; grade 3 one
    vasopressor or O2 >6 L/min."""
    for folder in (small, DEMO):
        v = (_read(folder, "measurements.csv").filter(pl.col("panel") == "vitals")
             .pivot(on="analyte", index=["subject_id", "day"], values="value"))
        day_grade = (pl.when(pl.col("TEMP") < 38).then(0)
                     .when((pl.col("VASOPRESSORS") >= 1) | (pl.col("O2_LPM") > 6)).then(3)
                     .when((pl.col("SBP") < 90) | (pl.col("O2_LPM") > 0)).then(2).otherwise(1))
        derived = v.group_by("subject_id").agg(day_grade.max().alias("derived"))
        crs = (_read(folder, "events.csv").filter(pl.col("category") == "crs")
               .select("subject_id", "grade"))
        both = derived.join(crs, on="subject_id", how="left").with_columns(pl.col("grade")
                                                                            .fill_null(0))
        assert both["derived"].to_list() == both["grade"].to_list()


def test_car_t_peak_and_dropout(small: Path) -> None:
    for folder in (small, DEMO):
        q = _read(folder, "measurements.csv").filter(pl.col("analyte") == "CAR_QPCR")
        peak = q.sort("value", descending=True).group_by("subject_id").agg(pl.col("day").first())
        assert peak["day"].is_between(7, 14).all()
        assert (q.filter(pl.col("day") == 0)["value"] < 50).all()


def test_hsct_and_death_events_match_patients(small: Path) -> None:
    for folder in (small, DEMO):
        p = _read(folder, "patients.csv")
        e = _read(folder, "events.csv")
        for col, cat in (("hsct_day", "hsct"), ("death_day", "death"),
                         ("progression_day", "progression")):
            want = sorted(p.filter(pl.col(col).is_not_null()).select("subject_id", col).rows())
            got = sorted(e.filter(pl.col("category") == cat).select("subject_id", "day").rows())
            assert got == want, cat
        dead = p.filter(pl.col("death_day").is_not_null())
        assert (dead["last_contact_day"] == dead["death_day"]).all()
        alive = p.filter(pl.col("death_day").is_null())
        assert (alive["last_contact_day"] >= 365).all()
        last = e.join(p, on="subject_id").filter(pl.col("day") > pl.col("last_contact_day"))
        assert last.height == 0


def test_h5ad_structure(small: Path) -> None:
    ad = pytest.importorskip("anndata")
    import scipy.sparse as sp

    a = ad.read_h5ad(small / "single_cell.h5ad")
    assert a.n_obs == 3000 and 1400 <= a.n_vars <= 1600
    for col in ("subject_id", "sample_id", "day", "timepoint", "tissue", "cell_type",
                "car_positive"):
        assert col in a.obs.columns
    assert set(a.obs["cell_type"].cat.categories) == {
        "CD4 T", "CD8 TEM", "NK", "B", "Monocyte", "HSPC", "Erythroid progenitor", "CAR-T"}
    assert a.obs["car_positive"].dtype == bool
    assert sp.issparse(a.X) and a.X.format == "csr" and a.X.dtype == np.float32
    counts = a.layers["counts"]
    assert sp.issparse(counts) and counts.format == "csr"
    assert np.issubdtype(counts.dtype, np.integer)
    assert a.obsm["X_umap"].shape == (3000, 2) and a.obsm["X_umap"].dtype == np.float32
    assert a.obsm["X_pca"].shape == (3000, 20) and a.obsm["X_pca"].dtype == np.float32
    for g in ("CD7", "CD3E", "CD8A", "NKG7", "GNLY", "MS4A1", "CD14", "CD34", "HBB", "CAR"):
        assert g in a.var_names
    scrna = _read(small, "samples.csv").filter(pl.col("assay") == "scrna")
    assert set(a.obs["sample_id"].astype(str)) <= set(scrna["sample_id"])
    # car_positive is read off the CAR feature
    car = np.asarray(counts[:, list(a.var_names).index("CAR")].todense()).ravel() > 0
    assert (car == a.obs["car_positive"].to_numpy()).all()


def test_fcs_files(small: Path) -> None:
    flowio = pytest.importorskip("flowio")
    s = _read(small, "samples.csv").filter(pl.col("assay") == "flow_fcs")
    assert s.height > 0 and s["file"].null_count() == 0
    files = sorted((small / "flow").glob("*.fcs"))
    assert len(files) == s.height
    f = flowio.FlowData(str(small / s["file"][0]))
    assert f.event_count == 5000
    markers = {ch["pns"] for ch in f.channels.values()}
    assert {"CD3", "CD4", "CD8", "CD7", "CD56", "CD19", "CD14", "CAR"} <= markers


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "--patients" in capsys.readouterr().out


# --- committed demo ---------------------------------------------------------------------------


def test_demo_is_small_and_complete() -> None:
    # .cache/ holds derived files (embeddings, gene columns) that are never committed
    files = [p for p in DEMO.rglob("*") if p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(DEMO).parts)]
    assert sum(p.stat().st_size for p in files) < 25 * 1024 * 1024
    names = {p.relative_to(DEMO).as_posix() for p in files}
    assert {*CSV_FILES, "study.toml", "single_cell.h5ad"} <= names
    assert (DEMO / "tcr.csv").stat().st_size < 3 * 1024 * 1024


def test_demo_matches_generator(tmp_path: Path) -> None:
    """The committed CSVs are exactly what the default call writes (regenerate when not)."""
    fresh = generate_study(tmp_path / "demo", cells=200)  # cells do not touch the CSVs
    for name in (*CSV_FILES, "flow/SAA-001_D28.fcs"):
        assert (DEMO / name).read_bytes() == (fresh / name).read_bytes(), name


@pytest.mark.slow
def test_demo_cell_receptors_match_generator(tmp_path: Path) -> None:
    """cell_receptors.tsv follows the cells, so it needs the full default run (about 7 s);
    the committed single_cell.h5ad holds the same cells (names and types) as a fresh one."""
    import anndata as ad

    fresh = generate_study(tmp_path / "demo")
    for name in ("cell_receptors.tsv", "study.toml"):
        assert (DEMO / name).read_bytes() == (fresh / name).read_bytes(), name
    a = ad.read_h5ad(DEMO / "single_cell.h5ad", backed="r")
    b = ad.read_h5ad(fresh / "single_cell.h5ad", backed="r")
    assert list(a.obs_names) == list(b.obs_names)
    assert (a.obs["cell_type"].to_numpy() == b.obs["cell_type"].to_numpy()).all()


def test_demo_cell_receptors_are_t_cells_with_shrinking_cd8_clones() -> None:
    """The per-cell receptors planted in the demo (sample_data/README.md): chains only on T
    cells of the h5ad; the TRB CDR3s of each patient's dominant Screening CD8 clones shrink
    in responders (SAA-001..003) by M3 and persist in non-responders (SAA-004, SAA-005)."""
    import anndata as ad

    rec = pl.read_csv(DEMO / "cell_receptors.tsv", separator="\t")
    assert rec.columns == ["cell_id", "sequence_id", "locus", "v_call", "j_call", "c_call",
                           "junction_aa", "productive", "duplicate_count"]
    assert set(rec["locus"]) == {"TRA", "TRB"}
    assert rec["junction_aa"].str.contains(r"^C[A-Z]+[FW]$").all()
    obs = ad.read_h5ad(DEMO / "single_cell.h5ad", backed="r").obs
    cells = pl.DataFrame({"cell_id": obs.index.to_numpy().astype(str),
                          "subject_id": obs["subject_id"].astype(str).to_numpy(),
                          "timepoint": obs["timepoint"].astype(str).to_numpy(),
                          "cell_type": obs["cell_type"].astype(str).to_numpy()})
    trb = rec.filter(pl.col("locus") == "TRB").join(cells, on="cell_id", how="left")
    assert trb["cell_type"].null_count() == 0
    assert set(trb["cell_type"]) == {"CD4 T", "CD8 TEM", "CAR-T"}
    assert trb.filter((pl.col("cell_type") == "CAR-T")
                      & (pl.col("timepoint") == "Screening")).height == 0
    cd8 = trb.filter(pl.col("cell_type") == "CD8 TEM")
    per = cd8.group_by("subject_id", "timepoint", "junction_aa").len()
    top = (per.filter(pl.col("timepoint") == "Screening").sort("len", descending=True)
           .group_by("subject_id", maintain_order=True).head(10).select("subject_id",
                                                                        "junction_aa"))
    totals = cd8.group_by("subject_id", "timepoint").len().rename({"len": "total"})
    share = (per.join(top, on=["subject_id", "junction_aa"]).group_by("subject_id", "timepoint")
             .agg(pl.col("len").sum()).join(totals, on=["subject_id", "timepoint"])
             .with_columns(s=pl.col("len") / pl.col("total")))
    s = {(a, t): v for a, t, v in share.select("subject_id", "timepoint", "s").iter_rows()}
    for subject in ("SAA-001", "SAA-002", "SAA-003"):
        assert s[(subject, "M3")] < 0.35 * s[(subject, "Screening")], subject
    for subject in ("SAA-004", "SAA-005"):
        assert s[(subject, "M3")] > 0.7 * s[(subject, "Screening")], subject
    assert min(v for (_, t), v in s.items() if t == "Screening") > 0.3


def test_demo_truth_table() -> None:
    assert _best(DEMO) == {"SAA-001": "CR", "SAA-002": "PR", "SAA-003": "CR",
                           "SAA-004": "NR", "SAA-005": "NR"}
    r = _read(DEMO, "responses.csv")
    saa3 = dict(r.filter(pl.col("subject_id") == "SAA-003").select("day", "response").iter_rows())
    assert saa3[90] == "PR" and saa3[180] == "CR"
    p = _read(DEMO, "patients.csv")
    assert p.filter(pl.col("hsct_day").is_not_null())["subject_id"].to_list() == ["SAA-004"]
    assert p.filter(pl.col("death_day").is_not_null())["subject_id"].to_list() == ["SAA-005"]
    e = _read(DEMO, "events.csv")
    crs = dict(e.filter(pl.col("category") == "crs").select("subject_id", "grade").iter_rows())
    assert crs == {"SAA-001": 2, "SAA-002": 1, "SAA-003": 3, "SAA-004": 1}
    icans = e.filter(pl.col("category") == "icans")
    assert icans["subject_id"].to_list() == ["SAA-003"] and icans["grade"].to_list() == [1]
    hgb = _read(DEMO, "measurements.csv").filter(pl.col("analyte") == "HGB")
    assert set(hgb.filter(pl.col("subject_id") == "SAA-002")["unit"]) == {"g/dL"}
    assert set(hgb.filter(pl.col("subject_id") != "SAA-002")["unit"]) == {"g/L"}


def test_demo_planted_effects() -> None:
    s = _read(DEMO, "samples.csv")
    groups = pl.DataFrame({"subject_id": [f"SAA-00{i}" for i in range(1, 6)],
                           "responder": [True, True, True, False, False]})
    prot = (_read(DEMO, "proteomics.csv").join(s.select("sample_id", "subject_id", "timepoint"),
                                               on="sample_id").join(groups, on="subject_id"))
    for feature in ("IFNG", "CXCL9", "CXCL10"):
        m3 = prot.filter(pl.col("feature") == feature, pl.col("timepoint") == "M3")
        gap = (m3.filter(~pl.col("responder"))["value"].mean()
               - m3.filter(pl.col("responder"))["value"].mean())
        assert gap > 1.5, feature
    rna = _read(DEMO, "rna_counts.csv")
    post = s.filter(pl.col("assay") == "rna", pl.col("day") > 0).join(groups, on="subject_id")
    lib = rna.select(pl.exclude("gene")).sum()
    cpm = rna.select("gene", *[(pl.col(c) / lib[c][0] * 1e6).alias(c) for c in lib.columns])
    isg = cpm.filter(pl.col("gene").is_in(list(ISG_GENES)))
    nr = post.filter(~pl.col("responder"))["sample_id"].to_list()
    r = post.filter(pl.col("responder"))["sample_id"].to_list()
    lfc = np.log2(isg.select(nr).to_numpy().mean(1) + 1) - np.log2(isg.select(r).to_numpy()
                                                                   .mean(1) + 1)
    assert np.median(lfc) > 1.5
    tcr = _read(DEMO, "tcr.csv").join(s.select("sample_id", "subject_id", "timepoint"),
                                      on="sample_id")
    share = tcr.group_by("subject_id", "timepoint").agg(
        (pl.col("count").sort(descending=True).head(10).sum() / pl.col("count").sum()).alias("s"))
    base = share.filter(pl.col("timepoint") == "Screening")["s"]
    assert base.is_between(0.3, 0.55).all()
    for subject in ("SAA-001", "SAA-002", "SAA-003"):
        one = dict(share.filter(pl.col("subject_id") == subject).select("timepoint", "s")
                   .iter_rows())
        assert one["M3"] < 0.7 * one["Screening"], subject


def test_no_cells_gives_an_empty_receptor_table(tmp_path: Path) -> None:
    out = generate_study(tmp_path / "s", patients=2, cells=0, seed=3)
    rec = pl.read_csv(out / "cell_receptors.tsv", separator="\t")
    assert rec.height == 0 and rec.columns[0] == "cell_id"


def test_single_cells_at_all_six_timepoints(tmp_path: Path) -> None:
    """For scale tests the single-cell samples can cover all six timepoints; the CSVs other
    than samples.csv do not change, and a wrong name is refused."""
    out = generate_study(tmp_path / "six", patients=3, cells=600, seed=11,
                         sc_timepoints=("Screening", "D14", "D28", "M3", "M6", "M12"))
    s = _read(out, "samples.csv").filter(pl.col("assay") == "scrna")
    assert s.group_by("subject_id").len()["len"].max() == 6
    import anndata as ad

    obs = ad.read_h5ad(out / "single_cell.h5ad", backed="r").obs
    assert set(obs["timepoint"].astype(str)) == {"Screening", "D14", "D28", "M3", "M6", "M12"}
    with pytest.raises(ValueError, match="sc_timepoints"):
        generate_study(tmp_path / "bad", patients=1, cells=10, sc_timepoints=("D7",))
