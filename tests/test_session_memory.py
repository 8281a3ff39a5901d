"""The per-session memory cap: what a session holds is measured, a value that would take it
past the cap is refused with a message naming the cap and what holds the memory, and a
session past its cap loses what can be made again (its selection) first."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from components import session_memory as sm

MB = 1024 * 1024


def test_sizes_follow_what_the_objects_hold():
    arr = np.zeros(MB // 8)                                   # 1 MiB of float64
    assert MB <= sm.size_of(arr) < MB + 1024
    frame = pl.DataFrame({"x": np.arange(250_000, dtype=np.int64)})
    assert sm.size_of(frame) == 2_000_000                     # 250k x 8 bytes
    cells = tuple(range(100_000, 200_000))                   # a selection of 100k cells
    assert 100_000 * 28 < sm.size_of(cells) < 100_000 * 48
    assert sm.size_of(b"x" * MB) >= MB
    # one object held twice counts once; a shared type counts nothing
    use = sm.account({"a": arr, "b": {"again": arr}, "c": frame}, shared=(pl.DataFrame,))
    assert MB <= use.total < MB + 4096
    assert use.by_key[0][0] == "a" and dict(use.by_key)["c"] == 0


def test_the_largest_entries_are_named_with_their_labels():
    use = sm.account({"il-sets": np.zeros(3 * MB // 8), "tiny": 1},
                     labels={"il-sets": "kept cell sets"})
    assert use.largest() == "kept cell sets 3 MB"
    text = sm.refusal("cell set 'CD8'", adding=2 * MB, use=use, cap_mb=4)
    assert "Not kept: cell set 'CD8' needs 2.0 MB" in text
    assert "holds 3 MB of the 4 MB each session may hold" in text
    assert "kept cell sets 3 MB" in text and "server.toml [sessions] memory_mb" in text


def test_droppable_entries_go_oldest_first_until_enough_is_freed():
    sizes = {"sel": 5, "old": 3, "new": 4}
    assert sm.to_evict(sizes, ["old", "sel", "new"], excess=6) == ["old", "sel"]
    assert sm.to_evict(sizes, ["old"], excess=6) == ["old"]
    assert sm.to_evict(sizes, ["gone", "new"], excess=1) == ["new"]


def test_cap_setting_from_server_toml_then_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("CART_SESSION_MEMORY_MB", raising=False)
    monkeypatch.delenv("STUDIES_ROOT", raising=False)
    assert sm.session_cap_mb(tmp_path / "study") == sm.DEFAULT_CAP_MB
    (tmp_path / "server.toml").write_text("[sessions]\nmemory_mb = 256\n")
    assert sm.session_cap_mb(tmp_path / "study") == 256
    monkeypatch.setenv("CART_SESSION_MEMORY_MB", "64")
    assert sm.session_cap_mb(tmp_path / "study") == 64
    monkeypatch.setenv("CART_SESSION_MEMORY_MB", "lots")
    with pytest.raises(ValueError, match="CART_SESSION_MEMORY_MB = 'lots' is not a size"):
        sm.session_cap_mb(tmp_path / "study")
    monkeypatch.delenv("CART_SESSION_MEMORY_MB")
    (tmp_path / "server.toml").write_text("[sessions]\nmemory_mb = -3\n")
    with pytest.raises(ValueError, match=r"server.toml \[sessions\] memory_mb = -3"):
        sm.session_cap_mb(tmp_path / "study")


def _script() -> None:
    import numpy as np
    import streamlit as st

    from components import session_memory as session

    step = st.session_state.setdefault("step", 0)
    mb = 1024 * 1024
    if step == 0:
        st.session_state["ok_first"] = session.keep("set-a", np.zeros(mb // 2, np.uint8),
                                                    what="cell set 'A'")
        st.session_state["ok_second"] = session.keep("set-b", np.zeros(7 * mb // 10, np.uint8),
                                                     what="cell set 'B'")
        st.session_state["ok_sel"] = session.keep("il-selection", np.zeros(mb // 4, np.uint8),
                                                  what="the selection", droppable=True)
        # a replaced entry does not count against its replacement
        st.session_state["ok_replace"] = session.keep(
            "il-selection", np.zeros(mb // 3, np.uint8), what="the selection",
            droppable=True)
    elif step == 1:     # something grew past the cap outside keep (an upload, say)
        st.session_state["upload"] = np.zeros(3 * mb // 10, np.uint8)
        session.enforce_cap()
        st.session_state["has_sel"] = "il-selection" in st.session_state
    else:
        st.session_state["upload"] = np.zeros(22 * mb // 10, np.uint8)
        session.enforce_cap()
    st.session_state["step"] = step + 1


def test_a_session_is_held_to_its_cap(monkeypatch):
    monkeypatch.setenv("CART_SESSION_MEMORY_MB", "1")
    monkeypatch.delenv("STUDIES_ROOT", raising=False)
    at = AppTest.from_function(_script).run()
    assert not at.exception
    s = at.session_state
    assert s["ok_first"] and not s["ok_second"] and s["ok_sel"] and s["ok_replace"]
    assert "set-b" not in s and "set-a" in s
    refused = [w.value for w in at.warning]
    assert len(refused) == 1 and refused[0].startswith("Not kept: cell set 'B' needs 0.7 MB")
    assert "of the 1 MB each session may hold" in refused[0]

    at.run()            # 0.5 + 0.33 + 0.3 MB: the selection (droppable) goes, the rest stays
    assert not at.exception and not at.session_state["has_sel"]
    assert "set-a" in at.session_state and "upload" in at.session_state
    note = at.warning[0].value
    assert "the current selection was cleared" in note and "1 MB" in note

    at.run()            # a 2.2 MB upload: nothing droppable left, the session is told
    assert "holds 3 MB, more than the 1 MB" in at.warning[0].value
    assert "remove kept cell sets or uploads" in at.warning[0].value


def test_no_cap_when_set_to_zero(monkeypatch):
    monkeypatch.setenv("CART_SESSION_MEMORY_MB", "0")
    at = AppTest.from_function(_script).run()
    assert at.session_state["ok_second"] and not at.warning


def _script_with_figures_shown():
    import numpy as np
    import polars as pl
    import streamlit as st

    from components import session_memory as session
    from views.spec import FigureSpec

    # a figure the view cache shares between sessions, 4 MB of data, shown on a page
    if "_figure_registry" not in st.session_state:
        big = pl.DataFrame({"v": np.zeros(500_000)})
        st.session_state["_figure_registry"] = {"k": FigureSpec("v", "t", None, big, None)}
        st.session_state["_figure_registry_study"] = {"k": "study"}
    st.session_state["ok"] = session.keep("set-a", np.zeros(100_000, np.uint8),
                                          what="cell set 'A'")
    st.session_state["mb"] = session.memory_use().mb
    session.enforce_cap()


def test_figures_shown_are_shared_and_not_counted_for_the_session(monkeypatch):
    from components import render

    assert {render._REGISTRY_KEY, render._REGISTRY_STUDY_KEY} == set(sm.SHARED_KEYS)
    monkeypatch.setenv("CART_SESSION_MEMORY_MB", "1")
    monkeypatch.delenv("STUDIES_ROOT", raising=False)
    at = AppTest.from_function(_script_with_figures_shown).run()
    assert not at.exception
    assert at.session_state["ok"] and at.session_state["mb"] < 0.2 and not at.warning


def _script_refusals() -> None:
    import numpy as np
    import streamlit as st

    from components import session_memory as session

    mb = 1024 * 1024
    st.session_state["il-sets"] = {"A": np.zeros(6 * mb // 10, np.uint8)}
    ok = {}
    # kept again under its own name: the set it replaces does not count
    ok["same name"] = session.room_for(np.zeros(6 * mb // 10, np.uint8), what="cell set 'A'",
                                       replacing=("il-sets", "A"))
    ok["new name"] = session.room_for(np.zeros(6 * mb // 10, np.uint8), what="cell set 'B'",
                                      replacing=("il-sets", "B"))
    # a refused selection: the previous one is cleared, not left active
    ok["first"] = session.keep("il-selection", np.zeros(mb // 4, np.uint8),
                               what="the selection", droppable=True, on_refusal="clear")
    ok["second"] = session.keep("il-selection", np.zeros(7 * mb // 10, np.uint8),
                                what="the selection", droppable=True, on_refusal="clear")
    st.session_state["ok"] = ok
    st.session_state["droppable"] = list(st.session_state.get("_droppable", []))
    # the default keeps what was there
    st.session_state["other"] = np.zeros(mb // 4, np.uint8)
    ok["other"] = session.keep("other", np.zeros(7 * mb // 10, np.uint8), what="B")


def test_a_replaced_set_is_not_sized_and_a_refused_selection_is_cleared(monkeypatch):
    monkeypatch.setenv("CART_SESSION_MEMORY_MB", "1")
    monkeypatch.delenv("STUDIES_ROOT", raising=False)
    at = AppTest.from_function(_script_refusals).run()
    assert not at.exception
    ok = at.session_state["ok"]
    assert ok == {"same name": True, "new name": False, "first": True, "second": False,
                  "other": False}
    assert "il-selection" not in at.session_state
    assert at.session_state["droppable"] == []
    assert at.session_state["other"].nbytes == 1024 * 1024 // 4
