"""Figures of somatic clones and the T-cell repertoire, one module per family:

- `somatic`: VAF lines per gene and patient, the oncoprint grid;
- `repertoire`: repertoire metrics over time (plain and depth-matched), baseline top clones as a
  stacked area, the Morisita-Horn overlap heatmap;
- `tracking`: dominant clones across samples (alluvial), per-clone change (volcano);
- `cells`: CAR status and clone size on single cells, shares and effects per cell type;
- `style`: the clone-class colours they share.

Factories take the frames of `analysis.clones` and `analysis.repertoire`;
`from components.figures import clones as figs; figs.vaf_lines(...)` keeps working.
"""

from components.figures.clones.cells import (
    car_histogram,
    effect_dots,
    expansion_embedding,
    stacked_share,
)
from components.figures.clones.repertoire import (
    clone_area,
    overlap_heatmap,
    rarefied_lines,
    repertoire_lines,
)
from components.figures.clones.somatic import VAF_FLOOR, oncoprint, vaf_lines
from components.figures.clones.style import CLASS_COLORS, CLASSES_ORDER
from components.figures.clones.tracking import clone_alluvial, clone_volcano

__all__ = ["vaf_lines", "oncoprint", "repertoire_lines", "clone_area", "overlap_heatmap",
           "VAF_FLOOR", "car_histogram", "clone_alluvial", "clone_volcano", "rarefied_lines",
           "expansion_embedding", "stacked_share", "effect_dots", "CLASS_COLORS",
           "CLASSES_ORDER"]
