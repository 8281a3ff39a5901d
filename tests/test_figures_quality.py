"""The sample-availability matrix (components.figures.quality)."""

from __future__ import annotations

import polars as pl

from components.figures.quality import availability_matrix


def test_availability_ticks_are_upright_and_assays_named_above_their_panel():
    df = pl.DataFrame({"subject_id": ["P1", "P1", "P2"], "timepoint": ["Screening", "D28", "D28"],
                       "assay": ["rna", "rna", "tcr"], "n_samples": [1, 1, 1]})
    fig = availability_matrix(df)
    assert [a.text for a in fig.layout.annotations] == ["rna", "tcr"]
    assert all(a.xanchor == "center" and a.yref == "paper" for a in fig.layout.annotations)
    assert fig.layout.xaxis.tickangle == -90 and fig.layout.xaxis2.tickangle == -90
    assert fig.layout.xaxis.domain[1] < fig.layout.xaxis2.domain[0]
