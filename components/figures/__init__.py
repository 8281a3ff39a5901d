"""Figure factories (plotly express manner): frame first, column names as keywords, return
`go.Figure`; no streamlit. Standard deck figures register in `components.figures.registry`."""
