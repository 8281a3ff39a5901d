"""Unit normalisation: one conversion table (from-unit, to-unit, factor, offset).

value_in_canonical = value * factor + offset. A unit that is not in the table for that analyte is
an error naming the row; nothing passes silently. Unit spellings are compared after folding case,
spaces, micro signs and exponent notation, so "x10E9/L", "10*9/L" and "GI/L" (CDISC) all match.
"""

from __future__ import annotations

import polars as pl

from data_loaders.analytes import Analyte

__all__ = ["CONVERSIONS", "unit_key", "conversion_table", "convert_units", "known_units_for"]

# (analyte or None for any analyte with that canonical unit, from-unit, to-unit, factor, offset)
CONVERSIONS: list[tuple[str | None, str, str, float, float]] = [
    # counts per volume, canonical 10^9/L
    (None, "10^9/L", "10^9/L", 1.0, 0.0),
    (None, "GI/L", "10^9/L", 1.0, 0.0),
    (None, "10^3/uL", "10^9/L", 1.0, 0.0),
    (None, "10^3/mm3", "10^9/L", 1.0, 0.0),
    (None, "K/uL", "10^9/L", 1.0, 0.0),
    (None, "thou/uL", "10^9/L", 1.0, 0.0),
    (None, "/nL", "10^9/L", 1.0, 0.0),
    (None, "10^6/mL", "10^9/L", 1.0, 0.0),
    (None, "cells/uL", "10^9/L", 0.001, 0.0),
    (None, "/uL", "10^9/L", 0.001, 0.0),
    (None, "/mm3", "10^9/L", 0.001, 0.0),
    (None, "cells/mm3", "10^9/L", 0.001, 0.0),
    (None, "10^6/L", "10^9/L", 0.001, 0.0),
    # red cells, canonical 10^12/L
    (None, "10^12/L", "10^12/L", 1.0, 0.0),
    (None, "TI/L", "10^12/L", 1.0, 0.0),
    (None, "10^6/uL", "10^12/L", 1.0, 0.0),
    (None, "M/uL", "10^12/L", 1.0, 0.0),
    # cells per microlitre, canonical cells/uL
    (None, "cells/uL", "cells/uL", 1.0, 0.0),
    (None, "/uL", "cells/uL", 1.0, 0.0),
    (None, "cells/mm3", "cells/uL", 1.0, 0.0),
    (None, "/mm3", "cells/uL", 1.0, 0.0),
    (None, "10^6/L", "cells/uL", 1.0, 0.0),
    (None, "10^9/L", "cells/uL", 1000.0, 0.0),
    (None, "GI/L", "cells/uL", 1000.0, 0.0),
    # mass concentrations
    (None, "g/L", "g/L", 1.0, 0.0),
    (None, "g/dL", "g/L", 10.0, 0.0),
    (None, "mg/dL", "g/L", 0.01, 0.0),
    ("HGB", "mmol/L", "g/L", 16.11, 0.0),  # Hb (monomer) 16.11 g/L per mmol/L
    (None, "mg/L", "mg/L", 1.0, 0.0),
    (None, "mg/dL", "mg/L", 10.0, 0.0),
    (None, "ug/mL", "mg/L", 1.0, 0.0),
    (None, "ng/mL", "ng/mL", 1.0, 0.0),
    (None, "ug/L", "ng/mL", 1.0, 0.0),
    ("FERRITIN", "pmol/L", "ng/mL", 0.445, 0.0),
    (None, "pg/mL", "pg/mL", 1.0, 0.0),
    (None, "ng/L", "pg/mL", 1.0, 0.0),
    (None, "ng/mL", "pg/mL", 1000.0, 0.0),
    (None, "U/L", "U/L", 1.0, 0.0),
    (None, "IU/L", "U/L", 1.0, 0.0),
    (None, "ukat/L", "U/L", 60.0, 0.0),
    (None, "umol/L", "umol/L", 1.0, 0.0),
    ("BILI", "mg/dL", "umol/L", 17.1, 0.0),
    ("CREAT", "mg/dL", "umol/L", 88.42, 0.0),
    (None, "mmol/L", "mmol/L", 1.0, 0.0),
    (None, "mEq/L", "mmol/L", 1.0, 0.0),
    # CAR transgene
    (None, "copies/ug gDNA", "copies/ug gDNA", 1.0, 0.0),
    (None, "copies/ug", "copies/ug gDNA", 1.0, 0.0),
    (None, "copies/ug DNA", "copies/ug gDNA", 1.0, 0.0),
    (None, "copies/ng gDNA", "copies/ug gDNA", 1000.0, 0.0),
    # other
    (None, "%", "%", 1.0, 0.0),
    (None, "percent", "%", 1.0, 0.0),
    ("HCT", "1", "%", 100.0, 0.0),     # CDISC LBSTRESU "1": haematocrit as a volume fraction
    ("HCT", "L/L", "%", 100.0, 0.0),
    (None, "fL", "fL", 1.0, 0.0),
    (None, "pg", "pg", 1.0, 0.0),
    ("MCH", "fmol(Fe)", "pg", 16.11, 0.0),   # haemoglobin iron: 16.11 pg per fmol (as HGB)
    ("MCH", "fmol", "pg", 16.11, 0.0),
    ("MCHC", "mmol/L", "g/L", 16.11, 0.0),
    # differential percentages given as a fraction (CDISC LBSTRESU "1", e.g. NEUTLE 0.62)
    *((pct, frac, "%", 100.0, 0.0) for pct in ("NEUT_PCT", "LYMPH_PCT", "MONO_PCT", "EOS_PCT",
                                               "BASO_PCT", "RETIC_PCT") for frac in ("1", "L/L")),
    (None, "C", "C", 1.0, 0.0),
    (None, "degC", "C", 1.0, 0.0),
    (None, "Cel", "C", 1.0, 0.0),
    (None, "F", "C", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    (None, "degF", "C", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    (None, "mmHg", "mmHg", 1.0, 0.0),
    (None, "mm[Hg]", "mmHg", 1.0, 0.0),
    (None, "L/min", "L/min", 1.0, 0.0),
    (None, "beats/min", "beats/min", 1.0, 0.0),
    (None, "bpm", "beats/min", 1.0, 0.0),
    (None, "/min", "beats/min", 1.0, 0.0),
    (None, "count", "count", 1.0, 0.0),
    (None, "n", "count", 1.0, 0.0),
    (None, "points", "points", 1.0, 0.0),
    (None, "score", "points", 1.0, 0.0),
]


def unit_key(unit: str) -> str:
    """Fold a unit spelling to a comparison key ("x10E9/L" -> "10^9/l", "µg" -> "ug")."""
    u = unit.strip().lower().replace(" ", "")
    for micro in ("µ", "μ", "mc"):
        u = u.replace(micro + "g", "ug").replace(micro + "l", "ul").replace(micro + "mol", "umol")
    u = u.replace("°", "deg").replace("×", "x").replace("**", "^").replace("*", "^")
    u = u.replace("~", "^")   # Chinese LIS exports write 10^9/L as 10~9/L
    if u.startswith("x10"):
        u = u[1:]
    for exp in ("3", "6", "9", "12"):
        u = u.replace(f"10e{exp}", f"10^{exp}").replace(f"10e+{exp}", f"10^{exp}")
    return u


def conversion_table() -> pl.DataFrame:
    """The conversion table as a frame with folded unit keys (analyte null = any analyte)."""
    return pl.DataFrame(
        [(a, unit_key(f), t, fac, off) for a, f, t, fac, off in CONVERSIONS],
        schema={"analyte": pl.String, "from_key": pl.String, "to_unit": pl.String,
                "factor": pl.Float64, "offset": pl.Float64},
        orient="row",
    )


def known_units_for(analyte: str, canonical_unit: str) -> list[str]:
    """Units that convert to `canonical_unit` for `analyte`, for 'what to do' messages."""
    out = [f for a, f, t, _, _ in CONVERSIONS if t == canonical_unit and a in (None, analyte)]
    return list(dict.fromkeys(out))


def convert_units(frame: pl.DataFrame, catalogue: dict[str, Analyte]) -> pl.DataFrame:
    """Add `value_canonical`, `unit_canonical`, `unit_known` to a frame with analyte/value/unit.

    An `lloq` column, when present, is converted in place with the same factor.
    Rows whose unit is blank take the analyte's canonical unit. The caller reports rows with
    `unit_known == False`; this function never drops or raises.
    """
    canon = pl.DataFrame(
        {"analyte": list(catalogue), "unit_canonical": [a.unit for a in catalogue.values()],
         "canon_key": [unit_key(a.unit) for a in catalogue.values()]},
        schema={"analyte": pl.String, "unit_canonical": pl.String, "canon_key": pl.String},
    )
    frame = frame.with_columns(pl.col("unit").cast(pl.String))
    units = frame.get_column("unit").unique().to_list()
    keys = pl.DataFrame({"unit": units, "from_key": [unit_key(u or "") for u in units]},
                        schema={"unit": pl.String, "from_key": pl.String})
    table = conversion_table()
    specific = table.filter(pl.col("analyte").is_not_null())
    generic = table.filter(pl.col("analyte").is_null()).drop("analyte")
    out = (
        frame.join(canon, on="analyte", how="left")
        .join(keys, on="unit", how="left", nulls_equal=True)
        .with_columns(
            pl.when(pl.col("from_key").is_null() | (pl.col("from_key") == ""))
            .then(pl.col("canon_key"))
            .otherwise(pl.col("from_key"))
            .alias("from_key")
        )
        .join(specific.rename({"factor": "_fs", "offset": "_os"}),
              left_on=["analyte", "from_key", "unit_canonical"],
              right_on=["analyte", "from_key", "to_unit"], how="left")
        .join(generic.rename({"factor": "_fg", "offset": "_og"}),
              left_on=["from_key", "unit_canonical"], right_on=["from_key", "to_unit"],
              how="left")
        .with_columns(
            # A study's own analyte may use a unit the table does not list: identity is known.
            factor=pl.coalesce("_fs", "_fg", pl.when(pl.col("from_key") == pl.col("canon_key"))
                               .then(pl.lit(1.0))),
            offset=pl.coalesce("_os", "_og", pl.lit(0.0)),
        )
        .with_columns(
            unit_known=pl.col("factor").is_not_null(),
            value_canonical=pl.col("value") * pl.col("factor") + pl.col("offset"),
        )
        .with_columns(
            [(pl.col("lloq") * pl.col("factor") + pl.col("offset")).alias("lloq")]
            if "lloq" in frame.columns else []
        )
        .drop("_fs", "_os", "_fg", "_og", "from_key", "canon_key", "factor", "offset")
    )
    return out
