"""Files for download and slides (no streamlit): the data behind a figure as CSV, and the figure
itself as PNG, SVG or PDF in a presentation template, each carrying its provenance.

CSV cells that a spreadsheet would run as a formula (starting with = + - @, tab or carriage
return) are prefixed with an apostrophe (OWASP "CSV injection" advice); numbers are untouched.

Figures are drawn by kaleido 1.x in headless Chromium through one long-lived export server
(`kaleido.start_sync_server`), started once per process: a warm export then costs a few tenths of
a second instead of a browser start. The presentation template (larger fonts, thicker lines,
white background, the study palette) is applied to a copy, so the figure on screen is unchanged.
WebGL traces (Scattergl) cannot be vector graphics: in SVG and PDF a small one becomes an SVG
scatter, a large one is drawn once as a PNG and placed as a layout image under the axes.

Provenance (study id, SHA-256 of the study files, cohort, page parameters, app version, date)
goes into every exported file: PNG text chunks, an SVG <metadata> element and comment, PDF
document information, and optionally a small footer line on the figure itself.

The package, one job per module: `csv_safe` (formula-safe CSV), `provenance` (what a file
records about its origin), `formats` (file formats, MIME types, slide size), `server` (the
kaleido export server), `template` (the presentation template), `webgl` (WebGL traces in vector
files), `metadata` (provenance written into PNG, SVG and PDF), `drawing` (figure files, one or
a batch).
"""

from components.export.csv_safe import csv_bytes, escape_formulas
from components.export.drawing import FigureJob, export_figure, export_figures, render_figure
from components.export.formats import FIGURE_FORMATS, MIME, SLIDE_SIZE
from components.export.metadata import (
    pdf_add_metadata,
    png_add_text,
    png_size,
    png_text,
    svg_add_metadata,
)
from components.export.provenance import APP_NAME, APP_VERSION, Provenance, params_dict
from components.export.server import (
    CHROMIUM_HINT,
    ExportUnavailable,
    export_server_running,
    export_unavailable_reason,
    find_browser,
    start_export_server,
    stop_export_server,
)
from components.export.template import presentation_figure
from components.export.webgl import rasterize_webgl

__all__ = ["csv_bytes", "escape_formulas", "APP_NAME", "APP_VERSION", "CHROMIUM_HINT",
           "FIGURE_FORMATS", "MIME", "SLIDE_SIZE", "ExportUnavailable", "Provenance",
           "find_browser", "export_unavailable_reason", "start_export_server",
           "stop_export_server", "export_server_running", "presentation_figure",
           "rasterize_webgl", "export_figure", "export_figures", "FigureJob", "render_figure",
           "png_add_text", "png_text", "png_size", "svg_add_metadata", "pdf_add_metadata",
           "params_dict"]
