"""FCS reader: the two real public files (event counts, $PnN/$PnS names, the off-by-one data
offset), a truncated copy, the arcsinh transform and the study-level event table."""

from __future__ import annotations

import numpy as np
import pytest

from data_loaders import StudyError
from data_loaders.formats.fcs import arcsinh, flow_events, flow_samples, read_fcs


def test_reads_facscalibur_file(shared_data):
    fcs = read_fcs(shared_data / "fcs" / "data1.fcs")
    assert fcs.events.shape == (13_367, 8)
    assert fcs.events.dtype == np.float32
    assert fcs.channels == ("FSC-H", "SSC-H", "FL1-H", "FL2-H", "FL3-H", "FL2-A", "FL4-H",
                            "Time")
    assert fcs.markers[2:5] == ("CD4 FITC", "CD8 B PE", "CD3 PerCP")
    assert fcs.labels[5] == "FL2-A"            # no $PnS: the channel name stands in
    assert not fcs.is_marker(0) and fcs.is_marker(2) and not fcs.is_marker(7)
    assert fcs.notes == ()


def test_reads_file_with_enddata_off_by_one_and_says_so(shared_data):
    fcs = read_fcs(shared_data / "fcs" / "test_comp_example.fcs")
    assert fcs.events.shape == (10_703, 18)
    assert fcs.channels[:5] == ("FSC-A", "FSC-W", "SSC-A", "Ax488-A", "PE-A")
    labels = dict(zip(fcs.channels, fcs.labels, strict=True))
    assert labels["PE-Cy7-A"] == "CD3" and labels["PacBlu-A"] == "CD4"
    assert any("off by one" in n for n in fcs.notes)
    assert np.isfinite(fcs.events).all()


def test_truncated_file_raises_study_error_naming_it(shared_data, tmp_path):
    raw = (shared_data / "fcs" / "data1.fcs").read_bytes()
    broken = tmp_path / "cut.fcs"
    broken.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StudyError, match="cut.fcs") as err:
        read_fcs(broken)
    assert "truncated" in str(err.value)
    with pytest.raises(StudyError, match="flow/x.fcs"):
        read_fcs(tmp_path / "missing.fcs", name="flow/x.fcs")


def test_arcsinh_cofactors():
    x = np.array([0.0, 150.0, -150.0, 5.0])
    assert np.allclose(arcsinh(x), np.arcsinh(x / 150))
    assert np.allclose(arcsinh(x, cofactor=5), np.arcsinh(x / 5))
    with pytest.raises(ValueError):
        arcsinh(x, cofactor=0)


def test_flow_events_of_demo_study_subsampled_per_file(demo_study):
    rows = flow_samples(demo_study)
    assert rows.height > 0 and rows.get_column("file").str.ends_with(".fcs").all()
    ev = flow_events(demo_study, per_file=100, seed=3)
    assert ev.frame.height == 100 * rows.height
    assert {"CD3", "CD7", "CAR"} <= set(ev.markers)
    assert "FSC-A" not in ev.markers and "Time" not in ev.markers
    assert ev.n_total > ev.frame.height and not ev.errors
    again = flow_events(demo_study, per_file=100, seed=3)
    assert again.frame.equals(ev.frame) and again.digest == ev.digest
    assert flow_events(demo_study, per_file=100, seed=4).digest != ev.digest
    assert ev.frame.get_column("CD3").dtype.is_float()


def test_flow_events_report_broken_file_and_keep_the_rest(write_study, shared_data):
    raw = (shared_data / "fcs" / "data1.fcs").read_bytes()
    folder = write_study(samples="sample_id,subject_id,day,assay,file\n"
                                 "S1,P1,0,flow_fcs,a.fcs\nS2,P2,0,flow_fcs,b.fcs\n"
                                 "S3,P2,9,flow_fcs,../outside.fcs\n",
                         **{"a.fcs": raw, "b.fcs": raw[:5000]})
    from data_loaders import load_study

    ev = flow_events(load_study(folder), per_file=50)
    assert ev.frame.height == 50
    assert any("b.fcs" in e for e in ev.errors)
    assert any("outside" in e for e in ev.errors)
    assert "CD4 FITC" in ev.markers
