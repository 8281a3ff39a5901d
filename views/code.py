""""Show the code": the Python snippet and the `cli.py export --view` command that make a
view's figure or table again from the study folder (teal's "Show R code").

A record (`views.spec.FigureSpec` / `TableSpec`) names the view that made it, the cohort and
the Params; that is all it takes:

    snippet(spec, study_dir)   ->  from views.outcomes import SurvivalParams, survival ...
    command(spec, study_dir)   ->  python cli.py export --study DIR --view outcomes.survival
                                   --params '{"endpoint": "OS"}' --out survival.json

`resolve(name)` and `params_from(view_fn, values)` are the inverse, used by `cli.py export
--view`: the view function from its dotted name, and its Params dataclass from JSON values.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import shlex
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.vocab import DayWindow

if TYPE_CHECKING:
    from analysis.cohort import Cohort
    from views.spec import FigureSpec, TableSpec

__all__ = ["snippet", "command", "resolve", "params_class", "params_from", "params_json",
           "returns_many", "pick", "CodeError"]



class CodeError(ValueError):
    """A view name or Params that cannot be turned back into a call (the message says why)."""


# ---- names ------------------------------------------------------------------------------------
def short_name(view: str) -> str:
    """"views.outcomes.survival" -> "outcomes.survival" (what `--view` takes)."""
    return view.removeprefix("views.")


def resolve(name: str) -> Callable[..., Any]:
    """The view function named `name` ("outcomes.survival" or "views.outcomes.survival")."""
    dotted = name if name.startswith("views.") else f"views.{name}"
    module_name, _, attr = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise CodeError(f"no view module {module_name!r} for view {name!r} "
                        "(views are named like outcomes.survival)") from err
    fn = getattr(module, attr, None)
    if not callable(fn) or not getattr(fn, "__recipe__", False):
        known = sorted(n for n, v in vars(module).items()
                       if callable(v) and getattr(v, "__recipe__", False))
        raise CodeError(f"{module_name} has no view {attr!r}; its views: "
                        f"{', '.join(known) or 'none'}")
    return fn


def params_class(fn: Callable[..., Any]) -> type | None:
    """The Params dataclass of a view function (from its `params` annotation)."""
    target = inspect.unwrap(fn)
    ann = inspect.signature(target).parameters.get("params")
    if ann is None or ann.annotation is inspect.Parameter.empty:
        return None
    hint = ann.annotation
    if isinstance(hint, str):
        hint = hint.replace("| None", "").replace("None |", "").strip()
        hint = eval(hint, target.__globals__)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next((a for a in typing.get_args(hint) if a is not type(None)), None)
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def returns_many(fn: Callable[..., Any]) -> bool:
    """Whether the view returns several records (a list or tuple of specs, e.g. one figure
    per grouping), so a record is picked by its key."""
    ann = inspect.signature(inspect.unwrap(fn)).return_annotation
    text = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    return text.startswith(("list", "tuple", "List", "Tuple"))


def pick(out: FigureSpec | TableSpec | Sequence[FigureSpec | TableSpec] | None,
         key: str | None) -> FigureSpec | TableSpec | None:
    """The record named `key` of a view's result (the first when no key is given)."""
    if not isinstance(out, (list, tuple)):
        return out
    if key is None:
        return out[0] if out else None
    found = next((s for s in out if getattr(s, "key", None) == key), None)
    if found is None:
        raise CodeError(f"no record {key!r}; this view makes "
                        f"{', '.join(str(getattr(s, 'key', '?')) for s in out) or 'none'}")
    return found


# ---- Params <-> JSON --------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, DayWindow):
        return value.as_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_plain(v) for v in items]
    if isinstance(value, Path):
        return str(value)
    return value


def params_json(params: object) -> str:
    """The Params as compact JSON (only the fields that differ from their defaults)."""
    if params is None:
        return "{}"
    if not dataclasses.is_dataclass(params):
        return json.dumps(_plain(params), separators=(", ", ": "), default=str)
    values = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        default = (f.default if f.default is not dataclasses.MISSING else
                   f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else dataclasses.MISSING)
        if default is dataclasses.MISSING or value != default:
            values[f.name] = _plain(value)
    return json.dumps(values, separators=(", ", ": "), default=str)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        errors: list[Exception] = []
        for option in options:
            try:
                return _convert(option, value)
            except (TypeError, ValueError) as err:
                errors.append(err)
        if errors and len(errors) == len(options):
            raise errors[0]
        return value
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise CodeError(f"{value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if hint is DayWindow:
        if isinstance(value, DayWindow):
            return value
        if isinstance(value, Mapping):
            return _build(DayWindow, value)
        try:
            return DayWindow.parse(value)
        except ValueError as err:
            raise CodeError(str(err)) from err
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return _build(hint, value)
    if origin is tuple or hint is tuple:
        args = typing.get_args(hint)
        if isinstance(value, str):
            value = [value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(_convert(a, v) for a, v in zip(args, value, strict=True))
        return tuple(_freeze(v) for v in value)
    if origin in (frozenset, set) or hint in (frozenset, set):
        args = typing.get_args(hint)
        return frozenset(_convert(args[0], v) if args else _freeze(v) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return _freeze(value)


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an annotation only for type checkers: take values as they are
        hints = {}
    names = {f.name for f in dataclasses.fields(cls)}
    if unknown := sorted(set(values) - names):
        raise CodeError(f"{cls.__name__} has no field(s) {', '.join(unknown)}; its fields: "
                        f"{', '.join(sorted(names))}")
    return cls(**{k: _convert(hints.get(k, Any), v) for k, v in values.items()})


def params_from(fn: Callable[..., Any], values: Mapping[str, Any] | str | None) -> Any:
    """The view's Params from JSON values (a mapping or a JSON string); defaults fill the
    rest. None when the view takes no Params."""
    cls = params_class(fn)
    if values is None:
        values = {}
    if isinstance(values, str):
        try:
            values = json.loads(values or "{}")
        except json.JSONDecodeError as err:
            raise CodeError(f"--params is not JSON ({err}); write e.g. "
                            "'{\"endpoint\": \"OS\"}'") from err
    if cls is None:
        if values:
            raise CodeError("this view takes no parameters")
        return None
    if not isinstance(values, Mapping):
        raise CodeError(f"parameters of {cls.__name__} must be a JSON object")
    try:
        return _build(cls, values or {})
    except TypeError as err:
        raise CodeError(f"{cls.__name__}: {err}") from err


# ---- the code ---------------------------------------------------------------------------------
def _classes(value: Any, out: dict[str, type]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out[type(value).__name__] = type(value)
        for f in dataclasses.fields(value):
            _classes(getattr(value, f.name), out)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _classes(v, out)
    elif isinstance(value, Mapping):
        for v in value.values():
            _classes(v, out)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _code(value: Any) -> str:
    """Python for `value`; a dataclass names only the fields that differ from the defaults."""
    if isinstance(value, DayWindow):
        return repr(value)          # DayWindow(0, 28)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = [f"{f.name}={_code(getattr(value, f.name))}" for f in dataclasses.fields(value)
                 if f.init and getattr(value, f.name) != _default(f)]
        return f"{type(value).__name__}({', '.join(parts)})"
    if isinstance(value, tuple):
        inner = ", ".join(_code(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return f"[{', '.join(_code(v) for v in value)}]"
    if isinstance(value, frozenset):
        return f"frozenset({{{', '.join(_code(v) for v in sorted(value, key=str))}}})" \
            if value else "frozenset()"
    return repr(value)


def _literal(value: Any, classes: dict[str, type]) -> str | None:
    """Python for `value` when it evaluates back to `value`, else None."""
    text = _code(value)
    try:
        ok = eval(text, dict(classes)) == value
    except Exception:  # noqa: BLE001 - not a literal: fall back to JSON
        ok = False
    return text if ok else None


def _wrap_call(head: str, args: list[str], width: int = 92) -> str:
    one = f"{head}({', '.join(args)})"
    if len(one) <= width:
        return one
    return f"{head}(\n" + "".join(f"    {a},\n" for a in args) + ")"


def _cohort_code(cohort: Cohort) -> str:
    if cohort is None or (getattr(cohort, "is_everything", False)
                          and getattr(cohort, "colour_by", None) is None):
        return "Cohort()"
    parts = []
    for f in dataclasses.fields(cohort):
        value = getattr(cohort, f.name)
        if value not in ((), None, DayWindow()):
            parts.append(f"{f.name}={value!r}")
    return f"Cohort({', '.join(parts)})"


def _out_name(spec: Any) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in spec.key).strip("_")
    return f"{stem or 'figure'}." + ("json" if getattr(spec, "fig", None) is not None else "csv")


def _study_line(study_dir: str | Path) -> list[str]:
    from data_loaders.deid import deid_default

    lines = [f"study = load_study({str(study_dir)!r})"]
    if deid_default(study_dir):
        lines.append("study = deidentify(study)  # as the app shows it on this server")
    return lines


def snippet(spec: FigureSpec | TableSpec, study_dir: str | Path) -> str:
    """A short Python script that makes `spec` again from the study folder and writes it
    (plotly JSON for a figure, CSV for a table)."""
    if not spec.view:
        raise CodeError(f"{spec.key}: the record does not name the view that made it")
    module, _, fn = spec.view.rpartition(".")
    classes: dict[str, type] = {}
    _classes(spec.params, classes)
    focus_classes: dict[str, type] = {}
    _classes(spec.focus, focus_classes)
    args = ["study", f"cohort={_cohort_code(spec.cohort)}"]
    imports: dict[str, set[str]] = {"analysis.cohort": {"Cohort"},
                                    "data_loaders": {"load_study"}, module: {fn}}
    if spec.cohort is not None and not spec.cohort.days.is_everything:
        imports["analysis.vocab"] = {"DayWindow"}
    from data_loaders.deid import deid_default

    if deid_default(study_dir):
        imports["data_loaders.deid"] = {"deidentify"}
    if spec.params is not None:
        text = _literal(spec.params, classes)
        if text is None:
            imports["views.code"] = {"params_from"}
            text = f"params_from({fn}, {params_json(spec.params)!r})"
        else:
            for name, cls in classes.items():
                imports.setdefault(cls.__module__, set()).add(name)
        args.append(f"params={text}")
    if spec.focus is not None and (focus := _literal(spec.focus, focus_classes)) is not None:
        for name, cls in focus_classes.items():
            imports.setdefault(cls.__module__, set()).add(name)
        args.append(f"focus={focus}")
    out = _out_name(spec)
    write = (f"Path({out!r}).write_text(spec.fig.to_json())"
             if getattr(spec, "fig", None) is not None else f"spec.data.write_csv({out!r})")
    lines = [f"# {spec.title}: rebuild it from the study folder",
             "from pathlib import Path", ""]
    lines += [f"from {m} import {', '.join(sorted(names))}"
              for m, names in sorted(imports.items())]
    lines.append("")
    lines += _study_line(study_dir)
    call = _wrap_call(fn, args)
    if returns_many(resolve(spec.view)):
        call = f"next(s for s in {call} if s.key == {spec.key!r})"
    lines += [f"spec = {call}", write]
    return "\n".join(lines) + "\n"


def command(spec: FigureSpec | TableSpec, study_dir: str | Path, *,
            out: str | None = None) -> str:
    """The `cli.py export --view` command that writes `spec` again (plotly JSON or CSV; a
    .png/.svg/.pdf --out draws the figure in the presentation template)."""
    if not spec.view:
        raise CodeError(f"{spec.key}: the record does not name the view that made it")
    parts = ["python", "cli.py", "export", "--study", str(study_dir),
             "--view", short_name(spec.view)]
    if spec.params is not None and params_json(spec.params) != "{}":
        parts += ["--params", params_json(spec.params)]
    cohort = spec.cohort
    if cohort is not None:
        if cohort.subjects:
            parts += ["--patients", *cohort.subjects]
        if cohort.groups:
            parts += ["--groups", *cohort.groups]
        if not cohort.days.is_everything:
            parts += [f"--days={cohort.days.text}"]
        if cohort.colour_by is not None:
            parts += ["--colour-by", cohort.colour_by]
    if returns_many(resolve(spec.view)):
        parts += ["--key", spec.key]
    parts += ["--out", out or _out_name(spec)]
    return " ".join(shlex.quote(p) for p in parts)
