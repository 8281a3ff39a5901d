"""Widget values as query-string text and back, for links that hold a page's options
(components.sidebar.linked): one value as text, lists and ranges (start, end) as repeated values.
Values are matched against a widget's choices by their text, so ints, bools and strings alike
come back as the type they were; a value that is not among the choices, not a number or out
of range is named, so the page can say what the link asked for and could not have.

`options` may be a closed vocabulary written as a `typing.Literal` alias (e.g.
`analysis.vocab.ResponseCriteria`): its values are the choices, so a link naming anything else
is named as not among them, never taken as it is."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from typing import Any, Literal

__all__ = ["Shape", "Options", "choices", "encode_option", "decode_option", "same_text"]

Shape = Literal["one", "many", "range"]
# a widget's choices: a sequence, or a Literal alias of a closed vocabulary
Options = Sequence[Any] | Any


def choices(options: Options | None) -> tuple[Any, ...] | None:
    """The choices as a tuple (a Literal alias gives its values; None stays None)."""
    if options is None:
        return None
    if typing.get_origin(options) is Literal:
        return typing.get_args(options)
    if isinstance(options, str | bytes) or not isinstance(options, Iterable):
        raise TypeError(f"options must be the choices or a Literal alias, not {options!r}")
    return tuple(options)


def _scalar(text: str, kind: type) -> Any:
    if kind is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{text!r} is not yes/no")
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    return text


def _text(value: Any, options: tuple[Any, ...] | None) -> str:
    if options is None and isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def encode_option(value: Any, *, shape: Shape = "one",
                  options: Options | None = None) -> str | list[str]:
    """A widget value as query-string text: one value as text, lists as repeated values (an
    empty list as one empty value), a range as its start and end."""
    opts = choices(options)
    if shape == "many":
        items = [_text(v, opts) for v in (value or ())]
        return items or [""]
    if shape == "range":
        lo, hi = value
        return [_text(lo, opts), _text(hi, opts)]
    return _text(value, opts)


def decode_option(raw: list[str], *, shape: Shape = "one", options: Options | None = None,
                  kind: type = str, bounds: tuple[Any, Any] | None = None
                  ) -> tuple[Any, list[str]]:
    """(value, problems) for the query-string values `raw` of one option. Values are matched
    against `options` by their text (so ints, bools and strings alike), else parsed as `kind`
    and clamped into `bounds`. `problems` names what the link asked for and cannot have; the
    value is None when nothing usable is left (the widget keeps its default)."""
    opts = choices(options)
    by_text = {_text(o, opts): o for o in opts} if opts is not None else None

    def one(text: str) -> tuple[Any, str | None]:
        if by_text is not None:
            if text in by_text:
                return by_text[text], None
            return None, f"{text!r} (not among the choices here)"
        try:
            value = _scalar(text, kind)
        except ValueError:
            return None, f"{text!r} (not a {kind.__name__})"
        if bounds is not None and kind in (int, float):
            lo, hi = bounds
            if value < lo or value > hi:
                clamped = min(max(value, lo), hi)
                return clamped, f"{text} (outside {lo}..{hi}; {clamped} used)"
        return value, None

    if shape == "many":
        texts = [t for t in raw if t != ""]
        values, problems = [], []
        for t in texts:
            v, p = one(t)
            if p is None or (v is not None and by_text is None):
                values.append(v)
            if p:
                problems.append(p)
        return values, problems
    if shape == "range":
        if len(raw) != 2:
            return None, [f"{', '.join(map(repr, raw))} (a range needs a start and an end)"]
        parts = [one(t) for t in raw]
        problems = [p for _, p in parts if p]
        if any(v is None for v, _ in parts):
            return None, problems
        lo, hi = parts[0][0], parts[1][0]
        if by_text is None and lo > hi:
            return None, [*problems, f"{raw[0]} to {raw[1]} (start after end)"]
        return (lo, hi), problems
    text = raw[-1] if raw else ""
    if text == "" and by_text is not None and None in opts:
        return None, []
    value, problem = one(text)
    return value, [problem] if problem else []


def same_text(a: Any, b: Any, *, shape: Shape = "one",
              options: Sequence[Any] | None = None) -> bool:
    """Whether two widget values are written the same in a link (a link that leaves out an
    option at its default reopens the same view only if the default reads back as it)."""
    return encode_option(a, shape=shape, options=options) == \
        encode_option(b, shape=shape, options=options)
