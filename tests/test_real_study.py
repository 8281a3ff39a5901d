"""A study assembled only from real public files (../shared/data): the CDISC pilot SDTM (DM, AE,
EX, LB), the Olink NPX export, AIRR and 10x VDJ repertoires, the TCGA LAML MAF and two FCS files.
It loads, the Data & quality page lists every table with its source format and every unmapped
item, and the blood-count page draws the pilot's haematology.

The pilot is not a CAR-T study: infusion_date is its first exposure to study drug (RFXSTDTC),
and the exposure records of XANOMELINE are mapped to "infusion" so that days exist; PLACEBO is
left unmapped on purpose so that the report shows an unmapped treatment. The omics files come
from other public sets, so samples.csv links their sample ids to pilot subjects (a fixture
choice, not a claim about the data)."""

from __future__ import annotations

import gzip
import io
import shutil
from pathlib import Path

import polars as pl
import pytest

from data_loaders import load_study

ROOT = Path(__file__).resolve().parent.parent
TOML = """[study]
id = "cdiscpilot01-real"
title = "CDISC pilot with real omics files"

[[sources]]
format = "sdtm"
path = "sdtm"
options = { treatments = { XANOMELINE = "infusion" } }

[[sources]]
format = "olink"
path = "proteomics/npx.csv"
options = { control_sample_types = [], control_pattern = "^CONTROL_SAMPLE" }

[[sources]]
format = "airr"
path = "tcr/airr_good_rearrangement.tsv"
options = { sample_id = "AIRR-1" }

[[sources]]
format = "10x_vdj"
path = "tcr/filtered_contig_annotations.csv.gz"
options = { sample_id = "VDJ-1" }

[[sources]]
format = "maf"
path = "mutations/tcga_laml.maf.gz"
"""
UNMAPPED_CODES = ("ANISO", "BUN", "CA", "CHOL", "CK", "CL", "COLOR", "GLUC", "KETONES",
                  "MACROCY", "PH", "PHOS", "POLYCHR", "PROT", "SPGRAV", "TSH",
                  "URATE", "UROBIL", "VITB12")


@pytest.fixture(scope="module")
def real_study_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real_study")
    copies = {"sdtm/dm.xpt": "sdtm/dm.xpt", "sdtm/ae.xpt": "sdtm/ae.xpt",
              "sdtm/ex.xpt": "sdtm/ex.xpt", "sdtm/lb.xpt": "sdtm/lb.xpt",
              "proteomics/npx_data_long_csv_first133rows.csv": "proteomics/npx.csv",
              "tcr/airr_good_rearrangement.tsv": "tcr/airr_good_rearrangement.tsv",
              "tcr/vdj_nextgem_hs_pbmc3_t_filtered_contig_annotations.csv.gz":
                  "tcr/filtered_contig_annotations.csv.gz",
              "mutations/tcga_laml.maf.gz": "mutations/tcga_laml.maf.gz",
              "fcs/data1.fcs": "fcs/data1.fcs",
              "fcs/test_comp_example.fcs": "fcs/test_comp_example.fcs"}
    for src, dst in copies.items():
        (root / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / src, root / dst)
    (root / "study.toml").write_text(TOML)
    # Pilot subjects with labs (the LB extract holds the first 60 subjects by USUBJID).
    import pyreadstat

    lb, _ = pyreadstat.read_xport(str(shared_data / "sdtm" / "lb.xpt"), usecols=["USUBJID"])
    subjects = sorted(lb["USUBJID"].unique())
    maf = pl.read_csv(io.BytesIO(gzip.decompress((shared_data / "mutations" /
                                                   "tcga_laml.maf.gz").read_bytes())),
                      separator="\t", infer_schema=False, quote_char=None)
    rows = [("S01", "proteomics", None), ("S02", "proteomics", None), ("AIRR-1", "tcr", None),
            ("VDJ-1", "tcr", None), ("FCS-1", "flow_fcs", "fcs/data1.fcs"),
            ("FCS-2", "flow_fcs", "fcs/test_comp_example.fcs")]
    rows += [(s, "mutations", None) for s in
             maf.get_column("Tumor_Sample_Barcode").unique().sort().to_list()]
    samples = pl.DataFrame(
        {"sample_id": [r[0] for r in rows],
         "subject_id": [subjects[i % len(subjects)] for i in range(len(rows))],
         "day": [28 * (i % 3) for i in range(len(rows))],
         "assay": [r[1] for r in rows], "file": [r[2] for r in rows]})
    samples.write_csv(root / "samples.csv")
    return root


@pytest.fixture(scope="module")
def real_study(real_study_dir: Path):
    return load_study(real_study_dir)


def test_every_table_loads_from_its_real_source(real_study):
    s = real_study
    assert not s.report.errors, [f.message for f in s.report.errors]
    assert s.patients.height == 306
    assert s.measurements.height == 8960   # 8108 + MCH 427 + MCHC 425
    assert s.events.height == 816 + 46 + 365
    assert s.proteomics.height == 68
    assert s.tcr.height == 3 + 2952
    assert s.mutations.height == 2114
    assert s.samples.height == 6 + 193
    formats = {}
    for src in s.sources:
        formats.setdefault(src.table, set()).add(src.format)
    assert formats == {"patients": {"sdtm-xpt"}, "measurements": {"sdtm-xpt"},
                       "events": {"sdtm-xpt"}, "samples": {"csv"}, "proteomics": {"olink"},
                       "tcr": {"airr", "10x_vdj"}, "mutations": {"maf"}}


def test_fcs_samples_are_listed_for_the_flow_reader(real_study):
    from data_loaders.formats.fcs import flow_samples

    fcs = flow_samples(real_study)
    assert sorted(fcs.get_column("file").to_list()) == ["fcs/data1.fcs",
                                                        "fcs/test_comp_example.fcs"]


def _frames(at) -> list[pl.DataFrame]:
    return [pl.from_pandas(df.value) for df in at.dataframe]


def test_data_quality_page_lists_tables_formats_and_unmapped_items(real_study_dir, app_page):
    at = app_page("pages/data_quality.py", study=real_study_dir, timeout=120)
    assert not at.exception
    frames = _frames(at)
    inventory = next(f for f in frames if "table" in f.columns and "format" in f.columns)
    fmt = dict(zip(inventory.get_column("table"), inventory.get_column("format"), strict=True))
    assert fmt["patients"] == fmt["measurements"] == fmt["events"] == "sdtm-xpt"
    assert fmt["proteomics"] == "olink" and fmt["mutations"] == "maf"
    assert fmt["tcr"] == "10x_vdj, airr"
    report = next(f for f in frames if "problem" in f.columns)
    problems = " | ".join(report.get_column("problem").to_list())
    for code in UNMAPPED_CODES:
        assert f"LBTESTCD {code!r}" in problems
    assert "EXTRT 'PLACEBO' is not mapped" in problems
    assert "2 control sample(s) left out" in problems
    assert "non-productive" in problems and "without a VAF" in problems


def test_blood_count_page_draws_the_sdtm_haematology(real_study_dir, real_study, app_page):
    page = ROOT / "pages" / "blood_counts.py"
    if not page.exists():
        pytest.skip("pages/blood_counts.py is not in this tree yet; the SDTM haematology "
                    "analytes are checked in test_formats_sdtm.py")
    at = app_page("pages/blood_counts.py", study=real_study_dir, timeout=120)
    assert not at.exception
    cbc = set(real_study.analytes_present("cbc"))
    assert {"WBC", "ALC", "AMC", "PLT", "HGB"} <= cbc
    charts = at.get("plotly_chart")
    assert charts, "the blood-count page drew no figure for the SDTM study"
    import json

    spec = json.loads(charts[0].proto.spec)
    panels = {a.get("text") for a in spec["layout"].get("annotations", [])}
    assert {"PLT", "HGB"} <= panels           # pilot PLAT and HGB (mmol/L -> g/L)
    # every LB subject: a trace each, or (above 40 patients) named in its colour's customdata
    drawn = {t.get("name") for t in spec["data"]} | {
        c for t in spec["data"] if isinstance(t.get("customdata"), list)
        for c in t["customdata"] if isinstance(c, str)}
    assert len(drawn & set(real_study.subject_ids)) >= 60


def test_cli_import_converts_every_format_once(real_study_dir: Path, shared_data: Path,
                                               tmp_path: Path, capsys):
    from cli import main

    out = tmp_path / "imported"
    out.mkdir()
    shutil.copy(real_study_dir / "samples.csv", out / "samples.csv")
    steps = [
        ["sdtm", shared_data / "sdtm", 'treatments={XANOMELINE="infusion"}'],
        ["olink", real_study_dir / "proteomics" / "npx.csv", "control_sample_types=[]",
         'control_pattern="^CONTROL_SAMPLE"'],
        ["airr", shared_data / "tcr" / "airr_good_rearrangement.tsv", "sample_id=AIRR-1"],
        ["10xvdj", real_study_dir / "tcr" / "filtered_contig_annotations.csv.gz",
         "sample_id=VDJ-1"],
        ["maf", shared_data / "mutations" / "tcga_laml.maf.gz"],
        ["10x", shared_data / "10x" / "filtered_feature_bc_matrix.h5", "sample_id=S01"],
    ]
    for fmt, src, *opts in steps:
        args = ["import", "--from", fmt, str(src), "--out", str(out)]
        for o in opts:
            args += ["--option", o]
        assert main(args) == 0, capsys.readouterr().out[-2000:]
    printed = capsys.readouterr().out
    assert "LBTESTCD 'CHOL' (Cholesterol) is not mapped" in printed
    assert {p.name for p in out.glob("*.parquet")} == {
        "patients_sdtm.parquet", "measurements_sdtm.parquet", "events_sdtm.parquet",
        "proteomics_olink.parquet", "tcr_airr.parquet", "tcr_10x_vdj.parquet",
        "mutations_maf.parquet"}
    study = load_study(out)
    assert not study.report.errors, [f.message for f in study.report.errors]
    assert (study.measurements.height, study.tcr.height, study.mutations.height) == \
        (8960, 2955, 2114)
    assert study.has("single_cell") and study.adata.n_obs == 1107


def test_cli_import_exits_non_zero_on_errors(shared_data: Path, tmp_path: Path, capsys):
    from cli import main

    # Olink's example rows are all labelled CONTROL: with default options nothing is left.
    code = main(["import", "--from", "olink", str(shared_data / "proteomics" /
                                                  "npx_data_long_csv_first133rows.csv"),
                 "--out", str(tmp_path / "s")])
    assert code == 1
    assert "all 133 rows are control samples" in capsys.readouterr().out
