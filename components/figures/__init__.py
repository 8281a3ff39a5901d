"""Figure factories (plotly express manner): frame first, column names as keywords, return
`go.Figure`; no streamlit. The standard deck is `views.DECK` (views/deck.py)."""
