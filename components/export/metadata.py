"""Provenance written into exported files: PNG text chunks (tEXt / iTXt), an SVG <metadata>
element and comment, PDF document information."""

from __future__ import annotations

import datetime as dt
import io
import re
import struct
import zlib
from collections.abc import Mapping
from xml.sax.saxutils import escape

from components.export.provenance import APP_NAME, Provenance

__all__ = ["png_items", "png_add_text", "png_text", "png_size", "svg_add_metadata",
           "pdf_add_metadata"]


def png_items(prov: Provenance) -> dict[str, str]:
    return {"Title": prov.figure, "Software": prov.app, "Source": prov.study_id,
            "Creation Time": prov.created, "Comment": prov.footer(),
            "provenance": prov.to_json()}


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_add_text(png: bytes, items: Mapping[str, str]) -> bytes:
    """`png` with text chunks added after IHDR (tEXt when Latin-1, else iTXt UTF-8)."""
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    chunks = []
    for key, value in items.items():
        if not value:
            continue
        k = key.encode("latin-1")[:79]
        try:
            chunks.append(_chunk(b"tEXt", k + b"\x00" + value.encode("latin-1")))
        except UnicodeEncodeError:
            chunks.append(_chunk(b"iTXt", k + b"\x00\x00\x00\x00\x00" + value.encode()))
    return png[:ihdr_end] + b"".join(chunks) + png[ihdr_end:]


def png_text(png: bytes) -> dict[str, str]:
    """The uncompressed text chunks (tEXt, iTXt) of a PNG file."""
    out, pos = {}, 8
    while pos + 8 <= len(png):
        length = struct.unpack(">I", png[pos:pos + 4])[0]
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        if kind == b"tEXt":
            k, _, v = data.partition(b"\x00")
            out[k.decode("latin-1")] = v.decode("latin-1")
        elif kind == b"iTXt":
            k, _, rest = data.partition(b"\x00")
            if rest[:1] == b"\x00":  # uncompressed
                _, _, rest = rest[2:].partition(b"\x00")  # language tag
                _, _, v = rest.partition(b"\x00")  # translated keyword
                out[k.decode("latin-1")] = v.decode("utf-8")
        elif kind == b"IEND":
            break
        pos += 12 + length
    return out


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels, from the IHDR chunk."""
    return struct.unpack(">II", png[16:24])


_SVG_OPEN = re.compile(rb"<svg\b[^>]*>")


def svg_add_metadata(svg: bytes, prov: Provenance) -> bytes:
    """`svg` with the provenance as a <metadata> element and a leading XML comment."""
    match = _SVG_OPEN.search(svg)
    if match is None:
        raise ValueError("not an SVG file")
    comment = "<!-- " + prov.footer().replace("--", "- -") + " -->\n"
    meta = (f'<metadata id="provenance"><cart:provenance xmlns:cart="urn:{APP_NAME}:provenance">'
            f"{escape(prov.to_json())}</cart:provenance></metadata>")
    if prov.figure:
        meta += f"<title>{escape(prov.figure)}</title>"
    end = match.end()
    return comment.encode() + svg[:end] + meta.encode() + svg[end:]


def _pdf_date(iso: str) -> str:
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        when = dt.datetime.now(dt.UTC)
    return when.strftime("D:%Y%m%d%H%M%S") + "Z"


def pdf_add_metadata(pdf: bytes, prov: Provenance, *, title: str | None = None) -> bytes:
    """`pdf` with the provenance in its document information."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_metadata({
        "/Title": title or prov.figure or prov.study_id, "/Author": APP_NAME,
        "/Subject": f"study {prov.study_id}; cohort: {prov.cohort}",
        "/Keywords": f"study={prov.study_id}; sha256={prov.content_hash}",
        "/Creator": prov.app, "/CreationDate": _pdf_date(prov.created),
        "/Provenance": prov.to_json()})
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()
