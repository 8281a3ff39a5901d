"""CAR-T multi-omics explorer: entry point.

    streamlit run app.py                      # the demo study
    streamlit run app.py -- --study DIR       # another study folder (or STUDY_DIR=DIR)
    STUDIES_ROOT=/srv/studies streamlit run app.py   # every study below a root (lab server)
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from components import filters

st.set_page_config(page_title="CAR-T explorer", page_icon=":material/biotech:", layout="wide")

_HERE = Path(__file__).resolve().parent

# (section, file, title, icon); the first page is the default.
PAGES = [
    ("Clinical", "pages/overview.py", "Overview", ":material/groups:"),
    ("Clinical", "pages/blood_counts.py", "Blood counts", ":material/bloodtype:"),
    ("Clinical", "pages/outcomes.py", "Outcomes", ":material/monitoring:"),
    ("CAR-T", "pages/kinetics.py", "Kinetics", ":material/trending_up:"),
    ("CAR-T", "pages/safety.py", "Cytokines & safety", ":material/emergency:"),
    ("Omics", "pages/immune_landscape.py", "Immune landscape", ":material/scatter_plot:"),
    ("Omics", "pages/compare.py", "Responders vs non-responders", ":material/compare_arrows:"),
    ("Omics", "pages/clones.py", "Clones & repertoire", ":material/account_tree:"),
    ("Study", "pages/slides.py", "Slides", ":material/slideshow:"),
    ("Study", "pages/data_quality.py", "Data & quality", ":material/fact_check:"),
]


def _navigation() -> st.navigation:
    sections: dict[str, list] = {}
    for section, file, title, icon in PAGES:
        if (_HERE / file).exists():
            sections.setdefault(section, []).append(
                st.Page(str(_HERE / file), title=title, icon=icon,
                        url_path=Path(file).stem))
    return st.navigation(sections)


page = _navigation()
ctx = filters.sidebar()
if ctx is None:
    st.stop()
page.run()
