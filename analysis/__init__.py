"""Pure computations on polars frames and `Study` objects: no streamlit, no plotly.

Each verb lives in its own module (`response`, `kinetics`, `differential`, ...) with a short
public surface; functions take data first and keyword-only options and return new frames.
"""
