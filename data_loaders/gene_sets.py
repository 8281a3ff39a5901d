"""Gene sets: the curated sets shipped in resources/gene_sets.gmt and sets a user brings (a GMT
file or a typed list of genes). GMT (Broad/MSigDB format): one set per line, tab-separated:
name, description, then gene symbols."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GeneSet", "SHIPPED_GMT", "parse_gmt", "read_gmt", "shipped_gene_sets",
           "typed_gene_set"]

SHIPPED_GMT = Path(__file__).resolve().parent.parent / "resources" / "gene_sets.gmt"
MAX_SETS = 5_000
MAX_GENES = 5_000


@dataclass(frozen=True)
class GeneSet:
    """A named list of gene symbols and where it comes from."""

    name: str
    genes: tuple[str, ...]
    source: str = ""


def parse_gmt(text: str, *, name: str = "gene sets") -> tuple[GeneSet, ...]:
    """Gene sets of GMT text. A line with fewer than three fields, a duplicate set name or a
    set with no gene is an error naming the file and line (ValueError)."""
    out: dict[str, GeneSet] = {}
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.rstrip("\r\n").split("\t")]
        if len(fields) < 3:
            raise ValueError(f"{name} line {i}: a GMT line is name<TAB>description<TAB>gene"
                             "<TAB>gene...; this one has "
                             f"{len(fields)} tab-separated field(s)")
        set_name, desc = fields[0], fields[1]
        genes = tuple(dict.fromkeys(g for g in fields[2:] if g))
        if not set_name:
            raise ValueError(f"{name} line {i}: the set has no name (first field)")
        if not genes:
            raise ValueError(f"{name} line {i}: set {set_name!r} lists no gene")
        if set_name in out:
            raise ValueError(f"{name} line {i}: set {set_name!r} appears twice; rename one")
        if len(out) >= MAX_SETS or len(genes) > MAX_GENES:
            raise ValueError(f"{name} line {i}: more than {MAX_SETS} sets or {MAX_GENES} "
                             "genes in a set; split the file")
        out[set_name] = GeneSet(set_name, genes, desc)
    if not out:
        raise ValueError(f"{name}: no gene set found (GMT: name<TAB>description<TAB>genes)")
    return tuple(out.values())


def read_gmt(path: str | Path) -> tuple[GeneSet, ...]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path.name}: not UTF-8 text ({exc.reason}); save the GMT file as "
                         "UTF-8") from exc
    return parse_gmt(text, name=path.name)


def shipped_gene_sets() -> tuple[GeneSet, ...]:
    """The curated sets shipped with the project (resources/gene_sets.gmt)."""
    return read_gmt(SHIPPED_GMT)


def typed_gene_set(text: str, *, name: str = "my genes") -> GeneSet:
    """A gene set from genes typed in, separated by commas, spaces, tabs or new lines."""
    genes = tuple(dict.fromkeys(g for g in re.split(r"[\s,;]+", text.strip()) if g))
    if not genes:
        raise ValueError("type at least one gene symbol (separated by commas or spaces)")
    return GeneSet(name.strip() or "my genes", genes, "typed in")
