"""Single-cell files as tools write them open without editing: scanpy-processed (scaled X,
log-normalised .raw), CELLxGENE (Ensembl var_names, symbols in feature_name, donor_id),
Seurat-converted (counts in X or layers["counts"], orig.ident, seurat_clusters, obsm "umap"),
loom, AnnData zarr and the real MuData file with receptor chains. For each: the store's
choices, `cli.py validate` and `cli.py embed`, gene colouring and marker genes on the right
matrix, and the study.toml table the importer proposes read back by the loader."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import tomli_w

import cli
from analysis import embedding as emb
from analysis.markers import rank_markers
from data_loaders import load_study
from data_loaders.importers.single_cell import propose_single_cell
from data_loaders.single_cell import SingleCellStore
from tests import sc_shapes

CLUSTERED = {"scanpy.h5ad", "seurat_counts.h5ad", "seurat_layers.h5ad"}
# what each shape must be read from: (counts location, log-normalised location, how)
MATRICES = {"scanpy.h5ad": (None, "raw/X", "file"),
            "cellxgene.h5ad": ("raw/X", "X", "file"),
            "seurat_counts.h5ad": ("X", "X", "from_counts"),
            "seurat_layers.h5ad": ("layers/counts", "X", "file"),
            "cells.loom": ("X", "X", "from_counts"),
            "cells.zarr": ("X", "X", "from_counts")}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shapes")
    out = {}
    for name, make in sc_shapes.SHAPES.items():
        folder = root / name.replace(".", "_")
        folder.mkdir()
        make(folder / name)
        out[name] = folder
    return out


def _fresh(shapes: dict[str, Path], name: str, tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    shutil.copytree(shapes[name], folder)
    return folder


@pytest.mark.parametrize("name", sorted(sc_shapes.SHAPES))
def test_store_chooses_matrices_symbols_and_obs(shapes, name):
    store = SingleCellStore(shapes[name] / name)
    r = store.resolved
    assert (r.counts, r.lognorm, r.lognorm_how) == MATRICES[name]
    assert store.gene_names[:3] == ["CD3E", "CD8A", "CD3D"]       # symbols, not Ensembl ids
    assert store.embeddings and "umap" in store.embeddings[0].lower()
    cells = store.cells()
    assert set(cells.get_column("subject_id")) == sc_shapes.EXPECT["patients"]
    assert set(cells.get_column("day")) == sc_shapes.EXPECT["days"]
    types = set(cells.get_column("cell_type"))
    assert types == ({"Cluster 0", "Cluster 1", "Cluster 2"} if name in CLUSTERED
                     else sc_shapes.EXPECT["cell_types"])
    _, _, block = next(store.blocks())
    assert block.data.min() >= 0 and block.data.max() < 12          # log-normalised, never scaled


@pytest.mark.parametrize("name", sorted(sc_shapes.SHAPES))
def test_validate_embed_colour_and_markers(shapes, name, tmp_path, capsys):
    folder = _fresh(shapes, name, tmp_path)
    assert cli.main(["validate", str(folder)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "2 patients" in out and "single_cell" in out
    study = load_study(folder)
    cells = emb.cell_table(study)
    assert cells.height == sc_shapes.N_CELLS
    assert set(cells.get_column("day")) == sc_shapes.EXPECT["days"]
    assert cells.get_column("sample_id").n_unique() == 4
    cd3e = emb.gene_vector(study, gene="CD3E")
    is_t = (cells.get_column("cell") % 3 == 0).to_numpy()
    assert cd3e[is_t].mean() > cd3e[~is_t].mean() + 1
    index = emb.read_marker_index(study)
    is_b = (cells.get_column("cell") % 3 == 2).to_numpy()
    top = rank_markers(index, selected=is_b, top=10).get_column("gene").to_list()
    assert set(top) <= set(sc_shapes.MARKERS["B"]), top
    assert cli.main(["embed", "--study", str(folder), "--method", "pca", "--n-pcs", "5",
                     "--n-top-genes", "20"]) == 0
    pca = emb.EmbeddingParams(method="pca", n_pcs=5, n_top_genes=20)
    assert emb.COMPUTED_BASIS in emb.available_bases(load_study(folder), params=pca)


@pytest.mark.parametrize("name", sorted(sc_shapes.SHAPES))
def test_proposed_table_is_what_the_loader_applies(shapes, name, tmp_path):
    folder = _fresh(shapes, name, tmp_path)
    proposal = propose_single_cell(folder / name)
    findings = proposal.pop("findings")
    assert not [f for f in findings if f["severity"] == "error"], findings
    assert any("2 patient(s): P1, P2" in f["message"] for f in findings)
    assert proposal["file"] == name and proposal["obs"]["subject_id"]
    toml = tomli_w.dumps({"single_cell": proposal})
    (folder / "study.toml").write_text(toml, encoding="utf-8")
    assert tomllib.loads(toml)["single_cell"] == proposal
    study = load_study(folder)
    assert study.report.ok, study.report.to_frame()
    assert study.single_cell.resolved.obs == proposal["obs"]
    assert set(emb.cell_table(study).get_column("day")) == sc_shapes.EXPECT["days"]


def test_study_toml_overrides_columns_and_timepoints(shapes, tmp_path):
    folder = _fresh(shapes, "seurat_counts.h5ad", tmp_path)
    (folder / "study.toml").write_text(
        '[single_cell]\nlognorm = "counts"\n[single_cell.obs]\nsubject_id = "orig.ident"\n'
        'timepoint = "visit"\n[single_cell.timepoints]\n"Day 28" = 30\nBaseline = -3\n',
        encoding="utf-8")
    study = load_study(folder)
    assert study.report.ok
    assert set(emb.cell_table(study).get_column("day")) == {-3, 30}


def test_orig_ident_naming_samples_is_the_sample(shapes):
    store = SingleCellStore(shapes["seurat_layers.h5ad"] / "seurat_layers.h5ad")
    assert store.resolved.obs["sample_id"] == "orig.ident"
    assert store.resolved.obs["subject_id"] == "patient_id"


def test_wrong_settings_are_errors_naming_the_choice(shapes, tmp_path):
    folder = _fresh(shapes, "scanpy.h5ad", tmp_path)
    (folder / "study.toml").write_text('[single_cell]\ncounts = "X"\nlognorm = "X"\n'
                                       '[single_cell.obs]\nsubject_id = "donor"\n',
                                       encoding="utf-8")
    study = load_study(folder)
    text = "\n".join(f.message for f in study.report.errors)
    assert "counts = 'X': it holds scaled" in text
    assert "lognorm = 'X': it holds scaled" in text
    assert "subject_id = 'donor': no such obs column" in text


def test_only_scaled_values_means_no_gene_colouring(tmp_path):
    import anndata as ad

    counts, *_ = sc_shapes.design()
    scaled = (counts - counts.mean(0)) / (counts.std(0) + 1e-9)
    obs = {"patient": ["P1"] * len(counts), "sample": ["S1"] * len(counts)}
    import pandas as pd

    ad.AnnData(scaled.astype(np.float32), obs=pd.DataFrame(obs, index=[
        f"c{i}" for i in range(len(counts))])).write_h5ad(tmp_path / "x.h5ad")
    store = SingleCellStore(tmp_path / "x.h5ad")
    assert store.resolved.lognorm is None and store.gene_names == []
    assert any("no matrix holds counts or log-normalised" in f.message for f in store.findings)
    with pytest.raises(ValueError, match="scaled values are not used"):
        next(store.blocks())


# ---- real MuData file (scirpy) ---------------------------------------------------------------
def test_real_h5mu_gex_and_receptor_chains(shared_data, tmp_path, capsys):
    folder = tmp_path / "wu"
    folder.mkdir()
    shutil.copy(shared_data / "scrna_tcr" / "wu2020_200.h5mu", folder)
    assert cli.main(["validate", str(folder)]) == 0
    assert "13 patients" in capsys.readouterr().out
    study = load_study(folder)
    store = study.single_cell
    assert store.modalities == ("gex", "airr") and store.n_obs == 150
    cells = emb.cell_table(study)
    assert cells.get_column("sample_id").n_unique() == 27
    assert cells.get_column("cell_type").n_unique() == 16
    chains = emb.receptor_chains(study)
    assert chains.height == 379 and chains.get_column("cell_id").n_unique() == 150
    assert chains.filter(pl.col("locus") == "TRB").height == 171
    first = chains.row(0, named=True)
    assert first["cell_id"] == "LN1_GTAGGCCAGCGTAGTG-1" and first["junction_aa"] == \
        "CASSLMRLAGDTQYF" and first["productive"] is True
    with_gex = chains.filter(pl.col("cell").is_not_null())
    assert with_gex.get_column("cell_id").n_unique() == 100   # 100 cells have both
    assert with_gex.get_column("subject_id").null_count() == 0
    clon = store.canonical("clonotype")
    assert clon.len() == 150 and clon.drop_nulls().len() == with_gex.get_column(
        "cell_id").n_unique()
    assert cli.main(["table", "--study", str(folder), "receptors"]) == 0
    assert "CASSLMRLAGDTQYF" in capsys.readouterr().out
    assert cli.main(["embed", "--study", str(folder), "--method", "pca", "--n-pcs", "5",
                     "--n-top-genes", "50"]) == 0
    assert emb.gene_vector(load_study(folder), gene="CD3E").max() > 0


# ---- Immune landscape page on every shape ----------------------------------------------------
PAGE = "pages/immune_landscape.py"


def _texts(at) -> str:
    return " ".join(str(m.value) for m in (*at.markdown, *at.caption, *at.info, *at.subheader,
                                           *at.warning))


def _landscape(at, n_cells: int) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert f"Showing {n_cells:,} of {n_cells:,} cells" in _texts(at)
    at.selectbox(key="il-color").set_value("Gene").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="il-gene").value == "CD7"          # searched by symbol
    at.session_state["il-selection"] = ("Single-cell RNA", np.arange(0, n_cells, 3))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    markers = next(d.value for d in at.dataframe if "log2_fold_change" in d.value.columns)
    assert len(markers) == 25 and markers["mean_selected"].min() >= 0


@pytest.mark.parametrize("name", sorted(sc_shapes.SHAPES))
def test_landscape_page_on_every_shape(shapes, name, tmp_path, app_page):
    at = app_page(PAGE, study=_fresh(shapes, name, tmp_path))
    assert ("Cell types are the file's clusters" in _texts(at)) == (name in CLUSTERED)
    _landscape(at, sc_shapes.N_CELLS)


def test_landscape_page_on_real_h5mu(shared_data, tmp_path, app_page):
    folder = tmp_path / "wu"
    folder.mkdir()
    shutil.copy(shared_data / "scrna_tcr" / "wu2020_200.h5mu", folder)
    _landscape(app_page(PAGE, study=folder), 150)


# ---- 10x matrices and the importer -----------------------------------------------------------
@pytest.mark.parametrize("src", ["filtered_feature_bc_matrix.h5", "filtered_feature_bc_matrix"])
def test_10x_matrix_named_in_single_cell_table(shared_data, tmp_path, src, app_page, capsys):
    folder = tmp_path / "tenx"
    folder.mkdir()
    (shutil.copytree if (shared_data / "10x" / src).is_dir() else shutil.copy)(
        shared_data / "10x" / src, folder / src)
    proposal = propose_single_cell(folder / src)
    assert proposal["format"] == "10x"
    assert any(f["severity"] == "error" and "which sample" in f["message"]
               for f in proposal["findings"])          # asked, never guessed
    (folder / "study.toml").write_text(
        f'[single_cell]\nfile = "{src}"\nformat = "10x"\nsample_id = "S1"\n'
        'subject_id = "P1"\ntimepoint = "D28"\n', encoding="utf-8")
    assert cli.main(["validate", str(folder)]) == 0, capsys.readouterr().out
    cells = emb.cell_table(load_study(folder))
    assert cells.height == 1107 and set(cells.get_column("day")) == {28}
    assert set(cells.get_column("subject_id")) == {"P1"}
    if src.endswith(".h5"):      # no embedding in a 10x matrix: the page offers to compute it
        at = app_page(PAGE, study=folder)
        assert not at.exception, [e.value for e in at.exception]
        assert "holds no embedding" in _texts(at)
        assert any("Compute a UMAP for 1,107 cells" in b.label for b in at.button)


@pytest.mark.parametrize("name", ["scanpy.h5ad", "cells.zarr"])
def test_cli_import_then_validate(shapes, name, tmp_path, capsys):
    out = tmp_path / "imported"
    assert cli.main(["import", str(shapes[name]), "--out", str(out)]) == 0, \
        capsys.readouterr().out
    cfg = tomllib.loads((out / "study.toml").read_text(encoding="utf-8"))
    assert cfg["single_cell"]["obs"]["subject_id"]
    assert cli.main(["validate", str(out)]) == 0, capsys.readouterr().out
    study = load_study(out)
    assert set(emb.cell_table(study).get_column("day")) == sc_shapes.EXPECT["days"]


def test_label_naming_no_day_is_reported_never_guessed(tmp_path):
    import anndata as ad
    import pandas as pd

    counts, types, patient, label, _ = sc_shapes.design()
    visit = np.where(label == "Baseline", "Baseline", "post")
    ad.AnnData(counts, obs=pd.DataFrame({"donor": patient, "visit": visit, "ident": np.where(
        types == "NK", "1", "0")}, index=[f"c{i}" for i in range(len(types))])).write_h5ad(
        tmp_path / "cells.h5ad")
    store = SingleCellStore(tmp_path / "cells.h5ad")
    warn = next(f for f in store.findings if f.severity == "warning")
    assert "'post'" in warn.message and warn.options == ("post",)
    assert "[single_cell.timepoints]" in warn.fix
    days = store.canonical("day")
    assert set(days.drop_nulls()) == {-7} and days.null_count() == (visit == "post").sum()
    assert store.resolved.cell_type_kind == "clusters"        # "ident" of bare numbers
    assert set(store.canonical("cell_type")) == {"Cluster 0", "Cluster 1"}
    study = load_study(tmp_path)
    assert any("'post'" in f.message for f in study.report.warnings)


def test_other_candidate_columns_are_offered(tmp_path):
    import anndata as ad
    import pandas as pd

    obs = pd.DataFrame({"donor_id": ["a", "b"] * 5, "patient": ["x", "y"] * 5,
                        "sample": ["s1", "s2"] * 5, "cell_type": ["T", "B"] * 5,
                        "author_cell_type": ["t", "b"] * 5, "leiden": ["0", "1"] * 5},
                       index=[f"c{i}" for i in range(10)])
    ad.AnnData(np.ones((10, 3), dtype=np.float32), obs=obs).write_h5ad(tmp_path / "x.h5ad")
    found = {f.column: f for f in SingleCellStore(tmp_path / "x.h5ad").findings}
    assert found["obs.subject_id"].options == ("patient",)
    assert "also possible: 'patient'" in found["obs.subject_id"].message
    assert found["obs.cell_type"].options == ("author_cell_type", "leiden")


def test_samples_table_day_wins_over_a_label_default(shapes, tmp_path):
    folder = _fresh(shapes, "scanpy.h5ad", tmp_path)
    (folder / "samples.csv").write_text(
        "sample_id,subject_id,day,timepoint\nP1_Baseline,P1,-11,Baseline\n"
        "P1_Day 28,P1,27,Day 28\nP2_Baseline,P2,-9,Baseline\nP2_Day 28,P2,28,Day 28\n",
        encoding="utf-8")
    (folder / "patients.csv").write_text("subject_id\nP1\nP2\n", encoding="utf-8")
    study = load_study(folder)
    assert study.report.ok, study.report.to_frame()
    days = emb.cell_table(study).group_by("sample_id").agg(pl.col("day").first())
    assert dict(days.iter_rows()) == {"P1_Baseline": -11, "P1_Day 28": 27,
                                      "P2_Baseline": -9, "P2_Day 28": 28}


def test_proposal_takes_answers_nested_or_dotted(shapes, shared_data):
    tenx = propose_single_cell(shared_data / "10x" / "filtered_feature_bc_matrix.h5",
                               settings={"sample_id": "S1", "subject_id": "P1",
                                         "timepoint": "D28"})
    assert not [f for f in tenx["findings"] if f["severity"] == "error"]
    assert (tenx["sample_id"], tenx["subject_id"], tenx["timepoint"]) == ("S1", "P1", "D28")
    path = shapes["seurat_counts.h5ad"] / "seurat_counts.h5ad"
    dotted = propose_single_cell(path, settings={"obs.timepoint": "visit",
                                                 "timepoints.Day 28": 30})
    nested = propose_single_cell(path, settings={"obs": {"timepoint": "visit"},
                                                 "timepoints": {"Day 28": 30}})
    assert dotted == nested and dotted["timepoints"] == {"Baseline": -7, "Day 28": 30}
    assert any("days: -7, 30" in f["message"] for f in dotted["findings"])


def test_dotted_answer_wins_over_the_proposed_sub_table(shapes, tmp_path):
    folder = _fresh(shapes, "seurat_counts.h5ad", tmp_path)
    (folder / "study.toml").write_text(
        '[single_cell]\n"timepoints.Baseline" = -3\n"obs.timepoint" = "visit"\n'
        '[single_cell.timepoints]\nBaseline = -7\n"Day 28" = 28\n', encoding="utf-8")
    assert set(emb.cell_table(load_study(folder)).get_column("day")) == {-3, 28}


def test_a_second_single_cell_file_is_reported_not_read(shapes, tmp_path):
    folder = _fresh(shapes, "cells.zarr", tmp_path)
    sc_shapes.loom(folder / "more.loom")
    study = load_study(folder)
    assert study.single_cell.format == "zarr"
    assert any("other single-cell files, not read: more.loom" in f.message
               for f in study.report.warnings)


def test_one_sample_file_gets_its_patient_and_time_from_the_table(tmp_path, capsys):
    """The scanpy tutorial's file (pbmc3k) names no patient: one value for every cell."""
    import anndata as ad
    import pandas as pd

    counts, types, *_ = sc_shapes.design()
    obs = pd.DataFrame({"n_genes": (counts > 0).sum(1), "leiden": pd.Categorical(
        np.where(types == "B", "1", "0"))}, index=[f"c{i}" for i in range(len(types))])
    ad.AnnData(counts, obs=obs, var=pd.DataFrame(index=list(sc_shapes.SYMBOLS))).write_h5ad(
        tmp_path / "pbmc3k.h5ad")
    assert cli.main(["validate", str(tmp_path)]) == 1
    assert '[single_cell] subject_id = "P1"' in capsys.readouterr().out
    (tmp_path / "study.toml").write_text('[single_cell]\nsubject_id = "P1"\n'
                                         'timepoint = "Day 28"\n', encoding="utf-8")
    assert cli.main(["validate", str(tmp_path)]) == 0
    cells = emb.cell_table(load_study(tmp_path))
    assert set(cells.get_column("subject_id")) == {"P1"}
    assert set(cells.get_column("day")) == {28}
    assert set(cells.get_column("sample_id")) == {"P1_D28"}
    proposal = propose_single_cell(tmp_path / "pbmc3k.h5ad", settings={"subject_id": "P1",
                                                                      "day": 0})
    assert proposal["subject_id"] == "P1" and proposal["day"] == 0


def test_repeated_gene_names_stay_distinct(tmp_path):
    import anndata as ad
    import pandas as pd

    var = pd.DataFrame({"feature_name": ["CD3E", "CD3E", "NKG7", None]},
                       index=["ENSG00000198851", "ENSG00000000001", "ENSG00000105374",
                              "ENSG00000000002"])
    obs = pd.DataFrame({"donor_id": ["P1"] * 4, "sample": ["S1"] * 4},
                       index=[f"c{i}" for i in range(4)])
    ad.AnnData(np.ones((4, 4), dtype=np.float32), obs=obs, var=var).write_h5ad(
        tmp_path / "a.h5ad")
    assert SingleCellStore(tmp_path / "a.h5ad").gene_names == [
        "CD3E", "CD3E (ENSG00000000001)", "NKG7", "ENSG00000000002"]
    dup = ad.AnnData(np.ones((4, 3), dtype=np.float32), obs=obs)
    dup.var_names = ["TBCE", "TBCE", "TBCE"]
    dup.write_h5ad(tmp_path / "b.h5ad")
    assert SingleCellStore(tmp_path / "b.h5ad").gene_names == ["TBCE", "TBCE-1", "TBCE-2"]
