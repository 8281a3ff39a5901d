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
