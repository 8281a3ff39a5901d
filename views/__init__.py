"""Recipes: one module per page, Study + cohort + Params -> FigureSpec / TableSpec (no
streamlit). The page, the Slides page, the deck and `cli.py export` call the same view, so what
they draw cannot drift apart."""
