"""Screen and file output: figure factories (no streamlit), theme, export, render, the
session (study, page context, view cache) and the sidebar (cohort and page options in the URL)."""
