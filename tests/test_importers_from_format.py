"""`import_format` (cli.py import --from FORMAT): canonical Parquet written into the study,
study.toml's [tables] keeping the files a table already had, written as TOML that reads back."""

from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl
import pytest

from data_loaders.importers.from_format import import_format

MAF = ("Hugo_Symbol\tTumor_Sample_Barcode\tHGVSp_Short\tt_alt_count\tt_depth\n"
       "DNMT3A\tS1\tp.R882H\t30\t100\nTET2\tS2\tp.Q1034*\t10\t40\n")


def _maf(tmp_path: Path) -> Path:
    path = tmp_path / "calls.maf"
    path.write_text(MAF, encoding="utf-8")
    return path


def test_converted_table_is_added_to_the_tables_already_named(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "mutations.csv").write_text("sample_id,gene,vaf\nS0,ASXL1,0.2\n", encoding="utf-8")
    (study / "study.toml").write_text('[study]\ntitle = "Lab \\"A\\" = first"\n',
                                      encoding="utf-8")
    done = import_format(_maf(tmp_path), study, fmt="maf", options={})
    assert done.written == ["mutations_maf.parquet"] and done.report.ok
    frame = pl.read_parquet(study / "mutations_maf.parquet")
    assert frame.get_column("gene").to_list() == ["DNMT3A", "TET2"]
    assert frame.get_column("vaf").to_list() == ["0.3", "0.25"]
    config = tomllib.loads((study / "study.toml").read_text(encoding="utf-8"))
    assert config["study"]["title"] == 'Lab "A" = first'     # quoting survives the rewrite
    assert config["tables"]["mutations"]["files"] == ["mutations.csv", "mutations_maf.parquet"]
    # converting again names the file once
    import_format(_maf(tmp_path), study, fmt="maf", options={})
    config = tomllib.loads((study / "study.toml").read_text(encoding="utf-8"))
    assert config["tables"]["mutations"]["files"] == ["mutations.csv", "mutations_maf.parquet"]


def test_new_folder_gets_a_title_and_an_unknown_format_is_refused(tmp_path):
    study = tmp_path / "new"
    import_format(_maf(tmp_path), study, fmt="maf", options={})
    config = tomllib.loads((study / "study.toml").read_text(encoding="utf-8"))
    assert config["study"]["title"] == "new"
    assert config["tables"]["mutations"]["files"] == ["mutations_maf.parquet"]
    with pytest.raises(ValueError, match="unknown format 'vcf'"):
        import_format(_maf(tmp_path), study, fmt="vcf", options={})
