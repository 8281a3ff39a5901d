"""Composition over all cells: fractions sum to 1 per sample, zeros are kept, the CLI prints
the documented columns, patient-level windows, CD7+ loss and CAR+ T cells on the demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

from analysis.cohort import response_groups
from analysis.composition import (
    COMPOSITION_COLUMNS,
    DayWindow,
    cd7_change,
    cd7_fractions,
    cell_type_composition,
    composition_by_window,
    composition_of,
    selection_summary,
    study_car_fraction,
    study_cd7_fractions,
)

ROOT = Path(__file__).resolve().parent.parent


def _cells() -> pl.DataFrame:
    return pl.DataFrame({
        "cell": list(range(7)),
        "sample_id": ["A", "A", "A", "B", "B", "C", "C"],
        "subject_id": ["P1", "P1", "P1", "P1", "P1", "P2", "P2"],
        "day": [-5, -5, -5, 28, 28, -3, 30],
        "cell_type": ["CD4 T", "NK", "NK", "CD4 T", "CAR-T", "B", "CD8 TEM"],
        "car_positive": [False, False, False, False, True, False, False],
    })


def test_composition_sums_to_one_and_keeps_zeros():
    comp = composition_of(_cells())
    assert tuple(comp.columns) == COMPOSITION_COLUMNS
    sums = comp.group_by("sample_id").agg(pl.col("fraction").sum())
    assert np.allclose(sums.get_column("fraction").to_numpy(), 1.0)
    a = comp.filter(pl.col("sample_id") == "A")
    assert a.height == 5                       # every cell type, zeros included
    assert a.filter(pl.col("cell_type") == "NK").get_column("fraction")[0] == 2 / 3
    assert a.filter(pl.col("cell_type") == "B").get_column("n_cells")[0] == 0


def test_demo_composition_over_all_cells(demo_study):
    comp = cell_type_composition(demo_study)
    assert tuple(comp.columns) == COMPOSITION_COLUMNS
    assert comp.get_column("n_cells").sum() == demo_study.adata.n_obs
    sums = comp.group_by("sample_id").agg(pl.col("fraction").sum()).get_column("fraction")
    assert np.allclose(sums.to_numpy(), 1.0)


def test_cli_table_composition_prints_documented_columns(demo_dir):
    out = subprocess.run([sys.executable, "cli.py", "table", "--study", str(demo_dir),
                          "composition"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0] == "sample_id,subject_id,day,cell_type,n_cells,fraction"


def test_by_window_is_one_value_per_patient():
    groups = pl.DataFrame({"subject_id": ["P1", "P2"],
                           "response_group": ["Responder", "Non-responder"]})
    windows = (DayWindow(None, 0, "pre"), DayWindow(1, None, "post"))
    out = composition_by_window(composition_of(_cells()), groups=groups, windows=windows)
    assert out.group_by("subject_id", "window", "cell_type").len().get_column("len").max() == 1
    p1 = out.filter((pl.col("subject_id") == "P1") & (pl.col("window") == "post"))
    assert p1.filter(pl.col("cell_type") == "CAR-T").get_column("fraction")[0] == 0.5
    assert set(out.get_column("response_group")) == {"Responder", "Non-responder"}


def test_cd7_fractions_and_change():
    cells = _cells()
    cd7 = np.array([1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0])
    frac = cd7_fractions(cells, cd7=cd7)
    a = frac.filter(pl.col("sample_id") == "A")
    assert a.filter(pl.col("population") == "CD7+ T").get_column("fraction")[0] == 1 / 3
    assert a.filter(pl.col("population") == "CD7+ NK").get_column("fraction")[0] == 1 / 3
    groups = pl.DataFrame({"subject_id": ["P1", "P2"], "response_group": ["Responder"] * 2})
    change = cd7_change(frac, groups=groups)
    t1 = change.filter((pl.col("subject_id") == "P1") & (pl.col("population") == "CD7+ T"))
    assert t1.get_column("change")[0] == -1 / 3


def test_demo_cd7_positive_t_and_nk_fall_after_infusion(demo_study):
    change = cd7_change(study_cd7_fractions(demo_study), groups=response_groups(demo_study))
    assert change.height == 2 * len(demo_study.subject_ids)
    assert (change.get_column("change") < 0).all()


def test_demo_car_positive_share_of_t_cells(demo_study):
    car = study_car_fraction(demo_study)
    pre = car.filter(pl.col("day") <= 0)
    post = car.filter(pl.col("day") > 0)
    assert pre.height and (pre.get_column("n_car") == 0).all()
    assert (post.get_column("car_pct_of_t") > 0).all()
    assert (post.get_column("car_pct_of_t") <= 100).all()


def test_selection_summary_counts_origin():
    s = selection_summary(_cells(), selected=np.array([0, 1, 2, 5]))
    assert s.get_column("n_cells").sum() == 4
    assert s.row(0, named=True)["subject_id"] == "P1"
    assert s.filter(pl.col("cell_type") == "NK").get_column("n_cells")[0] == 2
    assert np.isclose(s.get_column("share").sum(), 1.0)


def test_demo_lineages_are_all_mapped(demo_study):
    """Every demo cell type has a lineage from the vocabulary: CD8 TEM, CD4 T and CAR-T are
    T; NK; B; Monocyte myeloid; Erythroid progenitor erythroid; HSPC progenitor."""
    from analysis.composition import study_lineages

    lin = dict(study_lineages(demo_study).select("cell_type", "lineage").iter_rows())
    assert lin == {"CD8 TEM": "T", "CD4 T": "T", "CAR-T": "T", "NK": "NK", "B": "B",
                   "Monocyte": "myeloid", "Erythroid progenitor": "erythroid",
                   "HSPC": "progenitor"}
