"""Lab sheets (wide or long, Excel or CSV) with the mapping an import chose: see
data_loaders/importers/sheet.py for the options."""

from __future__ import annotations

from data_loaders.formats import register_reader
from data_loaders.importers.sheet import read_sheet_source

register_reader("sheet")(read_sheet_source)
