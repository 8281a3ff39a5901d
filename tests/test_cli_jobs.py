"""The command line runs the pages' long computations as the pages' own jobs
(jobs/console.py): the same function and arguments, so the result lands under the key the
page looks up, with the job's progress on stderr. The computations are stood in for by fast
ones here (DESeq2 takes a minute); marker ranking runs for real in test_views_markers.py."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import polars as pl
import pytest

import cli
import jobs
from analysis.cohort import Cohort
from jobs import core


@dataclass(frozen=True)
class FakeResult:               # stands in for analysis.pseudobulk.PseudobulkResult
    table: pl.DataFrame


@pytest.fixture
def demo_copy(demo_dir, tmp_path):
    study = tmp_path / "demo"
    shutil.copytree(demo_dir, study, ignore=shutil.ignore_patterns(".cache"))
    return study


def test_deseq2_compare_is_the_compare_pages_job(demo_copy, monkeypatch, capsys):
    from analysis import differential as dif
    from analysis.differential import RESULT_COLUMNS
    from data_loaders import load_study
    from views import compare as cv

    calls = []

    def fake_compare(study: object, **options: object) -> pl.DataFrame:
        calls.append(options)
        return pl.DataFrame({c: ["CXCL10"] if c in ("feature", "effect_measure") else [1.0]
                             for c in RESULT_COLUMNS})

    monkeypatch.setattr(dif, "compare", fake_compare)
    with core._forget_all():
        rc = cli.main(["compare", "--study", str(demo_copy), "--layer", "rna", "--window",
                       "D28", "--method", "deseq2"])
        out = capsys.readouterr()
        assert rc == 0, out.err
        assert out.out.splitlines()[0] == ",".join(RESULT_COLUMNS)
        assert "DESeq2: jobs run inline" in out.err and calls[0]["method"] == "deseq2"
        # the page's lookup (views.compare) with the page's default settings finds it
        study = load_study(demo_copy)
        rules = cv.rules(study)
        page = cv.CompareParams("rna", "D28", method="deseq2",
                                fdr_across_windows=rules.fdr_across_windows,
                                defining_in_fdr=rules.defining_in_fdr)
        found = jobs.find(cv.run_comparison, study, cohort=Cohort(),
                          params=cv.comparison_params(page), progress=jobs.progress,
                          study=study)
        assert found is not None and found.status() == "done"
        assert cli.main(["compare", "--study", str(demo_copy), "--layer", "rna", "--window",
                         "D28", "--method", "deseq2"]) == 0
        assert "the stored result" in capsys.readouterr().err and len(calls) == 1


def test_pseudobulk_and_gene_store_commands_submit_the_pages_jobs(demo_copy, monkeypatch,
                                                                  capsys):
    from analysis import pseudobulk as pb
    from data_loaders import load_study
    from views import landscape as lv
    from views import landscape_pseudobulk as lp

    seen = []

    def fake_de(study: object, *, params: pb.PseudobulkParams, progress: object = None
                ) -> object:
        seen.append(params)
        progress(0.5, "fitting")
        return FakeResult(pl.DataFrame({"gene": ["STAT1"], "q_value": [0.01]}))

    monkeypatch.setattr(pb, "pseudobulk_de", fake_de)
    with core._forget_all():
        assert cli.main(["pseudobulk", "--study", str(demo_copy), "--cell-type", "CD8 TEM",
                         "--window", "M3"]) == 0
        assert capsys.readouterr().out.splitlines() == ["gene,q_value", "STAT1,0.01"]
        study = load_study(demo_copy)
        page = lp.cohort_params(study, cohort=Cohort(), window="M3", design="groups",
                                selection=lp.cell_selection("cell type", "CD8 TEM"))
        assert seen == [page]
        assert jobs.find(lp.run_pseudobulk, study, params=page, progress=jobs.progress,
                         study=study) is not None

        assert not lv.gene_store_ready(study)
        assert cli.main(["gene-store", "--study", str(demo_copy)]) == 0
        assert lv.gene_store_ready(load_study(demo_copy))
        assert "gene store: jobs run inline" in capsys.readouterr().err
        assert cli.main(["gene-store", "--study", str(demo_copy)]) == 0
        assert "already" in capsys.readouterr().out


def test_a_failed_job_is_one_line_naming_the_reason(demo_copy, capsys):
    with core._forget_all():
        rc = cli.main(["pseudobulk", "--study", str(demo_copy), "--cell-type", "no such type"])
    err = capsys.readouterr().err
    assert rc == 2 and err.splitlines()[-1].startswith("error: ")
    assert "Traceback" not in err


@dataclass(frozen=True)
class FakeEmbedding:            # stands in for analysis.embedding.Embedding
    n: int
    basis: str
    source: str
    cache_file: str
    note: str = ""


def test_embed_submits_the_landscape_pages_umap_jobs(demo_copy, monkeypatch, capsys):
    """`cli.py embed` and the Immune landscape's "Compute a UMAP" (cells and flow events, the
    page's default choices) are one job function with one key: what one computed the other
    finds, and `--force` computes that same key again."""
    import analysis.embedding as emb
    from data_loaders import load_study
    from data_loaders.formats.fcs import FLOW_COFACTOR
    from views import landscape as lv

    cells, flow = [], []

    def fake_embed(study: object, *, params: object, force: bool = False,
                   progress: object = None) -> FakeEmbedding:
        cells.append((params, force))
        progress(0.5, "neighbours")
        return FakeEmbedding(123, "X_umap", "computed", "/cache/emb.npy")

    def fake_flow(study: object, events: pl.DataFrame, *, markers: list, digest: str,
                  params: object, force: bool = False, progress: object = None
                  ) -> FakeEmbedding:
        flow.append((tuple(markers), events.height))
        return FakeEmbedding(events.height, "UMAP (flow)", "computed", "/cache/flow.npy")

    monkeypatch.setattr(emb, "embed_study", fake_embed)
    monkeypatch.setattr(emb, "embed_flow", fake_flow)
    with core._forget_all():
        assert cli.main(["embed", "--study", str(demo_copy)]) == 0
        out = capsys.readouterr()
        assert out.out.splitlines()[0].startswith("single-cell: 123 points, computed in ")
        assert out.out.splitlines()[1].startswith("flow: ")
        assert len(cells) == 1 and len(flow) == 1
        assert cells[0] == (emb.EmbeddingParams(), False)

        study = load_study(demo_copy)
        rna = lv.umap_job(study, params=lv.LandscapeParams(lv.RNA, ""))   # the page's call
        found = jobs.find(rna.fn, study, study=study, progress=jobs.progress, **rna.kwargs)
        assert found is not None and found.status() == "done" and found.result().n == 123
        setup = lv.flow_setup(study)                   # the page's default flow choices
        fparams = lv.flow_params(study, color_by="Patient", marker=None,
                                 markers=setup.markers, cofactor=FLOW_COFACTOR)
        fjob = lv.umap_job(study, params=fparams)
        assert flow[0][0] == tuple(setup.markers)
        found = jobs.find(fjob.fn, study, study=study, progress=jobs.progress, **fjob.kwargs)
        assert found is not None and found.status() == "done"
        # the page's colouring is not part of the job
        other = lv.umap_job(study, params=lv.flow_params(
            study, color_by="Day", marker=None, markers=setup.markers, cofactor=FLOW_COFACTOR))
        assert jobs.job_key(other.fn, (study,), other.kwargs) == found.key

        assert cli.main(["embed", "--study", str(demo_copy)]) == 0     # stored: no compute
        assert len(cells) == 1 and len(flow) == 1
        assert cli.main(["embed", "--study", str(demo_copy), "--force", "--no-flow"]) == 0
        assert cells[-1] == (emb.EmbeddingParams(), True) and len(cells) == 2
        capsys.readouterr()
        again = jobs.find(rna.fn, study, study=study, progress=jobs.progress, **rna.kwargs)
        assert again is not None and again.key == found_key_of(rna, study)


def found_key_of(job: object, study: object) -> str:
    return jobs.job_key(job.fn, (study,), job.kwargs)  # type: ignore[attr-defined]


def test_gate_submits_the_cytometry_pages_gating_job(tmp_path, demo_dir, capsys, monkeypatch):
    """`cli.py gate` runs the Cytometry page's gating job (`cy.regate`, the key the page's
    button looks up) with its progress per file on stderr; a second run reads the stored
    result, `--force` gates again under the same key."""
    from data_loaders import load_study
    from tests import _flow_files as ff
    from tests.test_flow import FLOW_TOML
    from views import cytometry as cy

    study_dir = tmp_path / "study"
    shutil.copytree(demo_dir, study_dir, ignore=shutil.ignore_patterns(".cache", "*.h5ad"))
    ff.write_workspace(study_dir / "flow" / "panel.wsp",
                       [p.name for p in sorted((study_dir / "flow").glob("*.fcs"))])
    (study_dir / "study.toml").write_text((study_dir / "study.toml").read_text() + FLOW_TOML)
    with core._forget_all():
        assert cli.main(["gate", "--study", str(study_dir), "--workers", "1"]) == 0
        out = capsys.readouterr()
        assert out.out.startswith("gated 10 of 10 files, 60 sample x gate rows in ")
        assert "gating: jobs run inline" in out.err and "10 of 10" in out.err
        study = load_study(study_dir)
        page = jobs.find(cy.regate, study, study=study, progress=jobs.step_progress)
        assert page is not None and page.status() == "done"
        done = page.result()
        assert (done.gated, done.files, done.rows, done.findings) == (10, 10, 60, ())

        assert cli.main(["gate", "--study", str(study_dir)]) == 0
        out = capsys.readouterr()
        assert "gating: the stored result" in out.err and "gated 10 of 10" in out.out
        assert cli.main(["gate", "--study", str(study_dir), "--force"]) == 0
        out = capsys.readouterr()
        assert "gating: jobs run inline" in out.err and "gated 10 of 10" in out.out
        assert jobs.find(cy.regate, study, study=study).key == page.key
        # on a shared server the page's study is de-identified: so is the command's
        from data_loaders.deid import deidentify

        monkeypatch.setenv("DEID_SECRET", "test")
        shown = deidentify(load_study(study_dir))
        assert jobs.find(cy.regate, shown, study=shown) is None
        assert cli.main(["gate", "--study", str(study_dir), "--deidentify"]) == 0
        assert jobs.find(cy.regate, shown, study=shown, progress=jobs.step_progress) \
            .status() == "done"


def test_the_pages_flow_umap_is_what_cli_embed_finds(tmp_path, demo_dir, app_page,
                                                     monkeypatch, capsys):
    """The Immune landscape's "Compute a UMAP" of flow events, pressed on the page, stores
    the job `cli.py embed` submits: the command line then reads it instead of computing."""
    import analysis.embedding as emb
    from analysis.embedding import compute
    from data_loaders.single_cell.cache import save_array

    computed = []

    def fake_flow(study: object, events: pl.DataFrame, *, markers: list, digest: str,
                  params: object, force: bool = False, progress: object = None
                  ) -> FakeEmbedding:
        computed.append(tuple(markers))
        path = compute._flow_path(study, digest, markers, params)   # where the page looks
        save_array(path, events.select(markers[:2]).to_numpy().astype("float32"))
        return FakeEmbedding(events.height, "UMAP (flow)", "computed", str(path))

    monkeypatch.setattr(emb, "embed_flow", fake_flow)
    study = tmp_path / "flow-only"
    shutil.copytree(demo_dir, study, ignore=shutil.ignore_patterns(".cache", "*.h5ad"))
    with core._forget_all():
        at = app_page("pages/immune_landscape.py", study=study, timeout=120)
        assert not at.exception, [e.value for e in at.exception]
        assert any(b.key == "il-compute-start" for b in at.button)
        at.button(key="il-compute-start").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(computed) == 1 and not any(b.key == "il-compute-start" for b in at.button)
        assert "Showing PCA" not in " ".join(c.value for c in at.caption)
        capsys.readouterr()                    # the page's access log
        assert cli.main(["embed", "--study", str(study)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 1 and out[0].startswith("flow: ") and " computed in " in out[0]
        assert len(computed) == 1                   # the page's result, not computed again
