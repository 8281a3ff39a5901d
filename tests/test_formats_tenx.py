"""10x gene-expression reader: Cell Ranger 3 .h5 and filtered_feature_bc_matrix/ (scanpy's test
run) -> AnnData with log-normalised X, raw counts and sample metadata; malformed outputs."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli import main
from data_loaders import load_study
from data_loaders.errors import StudyError, ValidationReport
from data_loaders.formats.tenx import TARGET_SUM, read_10x_counts, to_anndata

H5 = "10x/filtered_feature_bc_matrix.h5"
MTX = "10x/filtered_feature_bc_matrix"
SAMPLES = "sample_id,subject_id,day,timepoint,assay\nS1,P1,14,D14,scrna\n"


def test_h5_and_mtx_folder_agree(shared_data: Path):
    a = read_10x_counts(shared_data / H5)
    b = read_10x_counts(shared_data / MTX)
    assert a.counts.shape == b.counts.shape == (1107, 507)
    assert a.counts.nnz == 23866
    assert (a.counts != b.counts).nnz == 0
    assert a.barcodes == b.barcodes and a.barcodes[0] == "AAACCCAAGGAGAGTA-1"
    assert a.gene_names == b.gene_names and set(a.feature_types) == {"Gene Expression"}


def test_anndata_normalised_with_counts_and_sample_metadata(shared_data: Path):
    import polars as pl

    samples = pl.read_csv(SAMPLES.encode())
    rep = ValidationReport()
    adata = to_anndata(shared_data / H5, {"sample_id": "S1"}, samples, rep)
    assert adata.shape == (1107, 507)
    counts = adata.layers["counts"]
    assert counts.sum() == read_10x_counts(shared_data / H5).counts.sum()
    row = np.expm1(adata.X[:5].toarray()).sum(axis=1)
    assert row == pytest.approx([TARGET_SUM] * 5, rel=1e-4)
    assert set(adata.obs["subject_id"]) == {"P1"} and set(adata.obs["day"]) == {14}
    assert adata.obs["n_counts"].iloc[0] == counts[0].sum()
    assert not rep.errors


def test_unknown_sample_is_an_error(shared_data: Path):
    rep = ValidationReport()
    to_anndata(shared_data / MTX, {"sample_id": "S9"}, None, rep)
    assert any("S9 not in the samples table" in f.problem for f in rep.errors)
    with pytest.raises(StudyError, match="does not say which sample"):
        to_anndata(shared_data / MTX, {}, None, ValidationReport())


def test_study_toml_source_is_converted_and_cached(shared_data: Path, write_study):
    folder = write_study(samples=SAMPLES)
    shutil.copy(shared_data / H5, folder / "gex.h5")
    (folder / "study.toml").write_text('[[sources]]\nformat = "10x"\npath = "gex.h5"\n'
                                       'options = { sample_id = "S1" }\n')
    study = load_study(folder)
    assert study.has("single_cell") and study.single_cell_file.parent.name == ".cache"
    assert study.adata.n_obs == 1107 and set(study.adata.obs["subject_id"]) == {"P1"}
    again = load_study(folder)
    assert again.single_cell_file == study.single_cell_file
    assert any("cached" in f.problem for f in again.report.findings)


def test_cli_import_writes_single_cell(shared_data: Path, write_study, capsys):
    folder = write_study(samples=SAMPLES)
    code = main(["import", "--from", "10x", str(shared_data / MTX), "--out", str(folder),
                 "--option", "sample_id=S1"])
    assert code == 0, capsys.readouterr()
    assert (folder / "single_cell.h5ad").is_file()
    assert load_study(folder).adata.n_obs == 1107


# ---- malformed ---------------------------------------------------------------------------------
def _folder(tmp_path: Path, shared_data: Path) -> Path:
    out = tmp_path / "mtx"
    shutil.copytree(shared_data / MTX, out)
    for p in out.iterdir():
        p.chmod(0o644)
    return out


def test_missing_file_in_folder(tmp_path, shared_data):
    folder = _folder(tmp_path, shared_data)
    (folder / "barcodes.tsv.gz").unlink()
    with pytest.raises(StudyError, match=r"mtx: .*barcodes\.tsv\[\.gz\] missing"):
        read_10x_counts(folder)


def test_truncated_h5_and_mtx(tmp_path, shared_data):
    cut = tmp_path / "cut.h5"
    cut.write_bytes((shared_data / H5).read_bytes()[:40_000])
    with pytest.raises(StudyError, match=r"cut\.h5: could not be read as a 10x HDF5 matrix"):
        read_10x_counts(cut)
    folder = _folder(tmp_path, shared_data)
    mtx = folder / "matrix.mtx.gz"
    mtx.write_bytes(mtx.read_bytes()[:30_000])
    with pytest.raises(StudyError, match=r"matrix\.mtx\.gz: could not be read"):
        read_10x_counts(folder)


def test_wrong_delimiter_in_features(tmp_path, shared_data):
    folder = _folder(tmp_path, shared_data)
    feats = folder / "features.tsv.gz"
    text = gzip.decompress(feats.read_bytes()).decode().replace("\t", ",")
    feats.write_bytes(gzip.compress(text.encode()))
    with pytest.raises(StudyError, match=r"features\.tsv\.gz: .*tab-separated"):
        read_10x_counts(folder)


def test_non_integer_counts_and_mismatched_barcodes(tmp_path, shared_data):
    folder = _folder(tmp_path, shared_data)
    mtx = folder / "matrix.mtx.gz"
    lines = gzip.decompress(mtx.read_bytes()).decode().splitlines()
    header_end = next(i for i, ln in enumerate(lines) if not ln.startswith("%")) + 1
    r, c, _ = lines[header_end].split()
    lines[header_end] = f"{r} {c} many"
    mtx.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(StudyError, match=r"matrix\.mtx\.gz: could not be read"):
        read_10x_counts(folder)
    lines[header_end] = f"{r} {c} 1.5"
    lines[0] = lines[0].replace("integer", "real")
    mtx.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(StudyError, match="not non-negative whole counts"):
        read_10x_counts(folder)
    folder2 = tmp_path / "two"
    shutil.copytree(folder, folder2)
    shutil.copy(shared_data / MTX / "matrix.mtx.gz", folder2 / "matrix.mtx.gz")
    bcs = folder2 / "barcodes.tsv.gz"
    bcs.chmod(0o644)
    kept = gzip.decompress(bcs.read_bytes()).decode().splitlines()[:-3]
    bcs.write_bytes(gzip.compress(("\n".join(kept) + "\n").encode()))
    with pytest.raises(StudyError, match="1104 barcodes"):
        read_10x_counts(folder2)
