"""Receptor chains of a MuData `airr` modality as scirpy (>= 0.13) writes it: obsm["airr"] is
an awkward array (one list of AIRR Rearrangement records per cell) stored as flat buffers with
a JSON `form`. The buffers are decoded here with numpy, so reading them needs neither awkward
nor scirpy; the layouts scirpy writes (list-offset, record, indexed-option, numpy, empty,
strings) are supported and any other is refused with a clear message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

__all__ = ["read_airr_chains", "RECEPTOR_COLUMNS"]

RECEPTOR_COLUMNS = ("cell_id", "chain", "locus", "junction_aa", "junction", "v_call",
                    "d_call", "j_call", "c_call", "productive", "duplicate_count",
                    "consensus_count", "sequence_id")


def _decode(form: dict[str, Any], get: Callable[[str], np.ndarray], length: int) -> list[Any]:
    cls = form["class"]
    key = form.get("form_key")
    params = form.get("parameters") or {}
    if cls == "NumpyArray":
        return get(f"{key}-data")[:length].tolist()
    if cls == "EmptyArray":
        return [None] * length
    if cls == "ListOffsetArray":
        offsets = get(f"{key}-offsets")[:length + 1].astype(np.int64)
        if params.get("__array__") in ("string", "bytestring"):
            chars = get(f"{form['content']['form_key']}-data")
            raw = chars.tobytes() if hasattr(chars, "tobytes") else bytes(chars)
            return [raw[a:b].decode("utf-8", "replace") for a, b in zip(offsets[:-1],
                                                                           offsets[1:],
                                                                           strict=True)]
        content = _decode(form["content"], get, int(offsets[-1]) if length else 0)
        return [content[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    if cls in ("IndexedOptionArray", "IndexedArray"):
        index = get(f"{key}-index")[:length].astype(np.int64)
        n = int(index.max()) + 1 if index.size and index.max() >= 0 else 0
        content = _decode(form["content"], get, n)
        return [content[i] if i >= 0 else None for i in index]
    if cls == "ByteMaskedArray":
        mask = get(f"{key}-mask")[:length].astype(bool)
        content = _decode(form["content"], get, length)
        valid = mask if form.get("valid_when", True) else ~mask
        return [c if v else None for c, v in zip(content, valid, strict=True)]
    if cls == "UnmaskedArray":
        return _decode(form["content"], get, length)
    if cls == "RecordArray":
        return [dict(zip(form["fields"], vals, strict=True)) for vals in zip(
            *[_decode(c, get, length) for c in form["contents"]], strict=True)] if length \
            else []
    raise ValueError(f"awkward layout {cls!r} is not supported")


def read_airr_chains(group: Any, cell_ids: list[str]) -> pl.DataFrame:
    """One row per chain: cell_id, chain (position within the cell), locus, junction_aa, ...
    from the awkward-array group obsm["airr"] of an airr modality (cell_ids: its obs names)."""
    form = json.loads(group.attrs["form"])
    length = int(group.attrs["length"])
    if length != len(cell_ids):
        raise ValueError(f"obsm['airr'] holds {length} cells but obs has {len(cell_ids)}")
    cache: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = np.asarray(group[name][:])
        return cache[name]

    per_cell = _decode(form, get, length)
    rows = []
    for cid, chains in zip(cell_ids, per_cell, strict=True):
        for k, chain in enumerate(chains or []):
            rec = {c: chain.get(c) for c in RECEPTOR_COLUMNS[3:]} if isinstance(chain, dict) \
                else {}
            rows.append({"cell_id": cid, "chain": k, "locus": chain.get("locus")
                         if isinstance(chain, dict) else None, **rec})
    schema = {"cell_id": pl.String, "chain": pl.Int64, "locus": pl.String,
              "junction_aa": pl.String, "junction": pl.String, "v_call": pl.String,
              "d_call": pl.String, "j_call": pl.String, "c_call": pl.String,
              "productive": pl.Boolean, "duplicate_count": pl.Int64,
              "consensus_count": pl.Int64, "sequence_id": pl.String}
    if not rows:
        return pl.DataFrame(schema=schema)
    df = pl.DataFrame(rows, infer_schema_length=None)
    return df.select([pl.col(c).cast(t, strict=False) if c in df.columns
                      else pl.lit(None, dtype=t).alias(c) for c, t in schema.items()])
