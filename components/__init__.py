"""Screen and file output: figure factories (no streamlit), theme, export, render, filters."""
