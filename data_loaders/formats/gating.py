"""Gate files (Gating-ML 2.0, FlowJo 10 .wsp) applied to FCS files with FlowKit.

One job: applying gate files to FCS files (reading, compensation, gating, and the cache and
worker processes for many files).

FlowKit (White et al., Bioinformatics 2021) reads both formats and applies compensation,
transforms and every gate type of the ISAC Gating-ML 2.0 standard (Spidlen et al., Cytometry A
2015) exactly; its results match the standard's compliance files (tests/test_gating.py checks
every gate of them against the truth files).

`gate_file(job)` is the unit of work: one FCS file and one gate file in, the event count of
every population out (`GateResult`). It opens both files itself and touches nothing else, so it
runs in a worker process (and, later, on a Dask worker) unchanged. The events of one gate for
its plot come from `gate_plots.py`. `gate_files(jobs, ...)` runs
many of them in parallel processes, caching each result on disk by the content hash of the FCS
file, the gate file and the options; a file that fails (corrupt, a channel the gates need is
missing, another panel) gives a `GateResult` with the error naming the file and channel, and
the other files still gate.

Compensation (`GateJob.compensation`):
- "" (default): as the gate file says: a FlowJo workspace's own matrix, or the Gating-ML
  `compensation-ref` of each dimension (`FCS` = the file's $SPILLOVER/SPILL keyword).
- "fcs": the FCS file's own spillover keyword, for every fluorescence dimension.
- a path to a matrix file (CSV/TSV, detector names as the header row): that matrix.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["GateJob", "GateResult", "Population", "gate_file", "gate_files", "job_key",
           "load_strategy", "read_sample", "gate_tree", "GATING_VERSION"]

# bump when the meaning of a cached result changes
GATING_VERSION = "1"
_SCATTER = ("FSC", "SSC", "TIME")
_WSP = (".wsp",)


@dataclass(frozen=True)
class GateJob:
    """One FCS file to gate with one gate file (paths absolute; `label` names it in messages)."""

    fcs: str
    gates: str
    label: str = ""
    sample_name: str = ""        # the sample's name in a FlowJo workspace (default: file name)
    compensation: str = ""       # "", "fcs" or a matrix file path
    group: str = "All Samples"   # workspace group whose tree gates a file the workspace lacks


@dataclass(frozen=True)
class Population:
    """One gated population of one file: its path ("/Lymphocytes/CD3+"), its parent's path
    ("" = all events), the gate's type and the number of events in it."""

    path: str
    gate: str
    parent: str
    gate_type: str
    count: int


@dataclass(frozen=True)
class GateResult:
    label: str
    n_events: int = 0
    populations: tuple[Population, ...] = ()
    notes: tuple[str, ...] = ()
    error: str = ""
    channel: str = ""            # the missing or unusable channel, when that was the error
    cached: bool = False

    @property
    def ok(self) -> bool:
        return not self.error

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("cached")
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> GateResult:
        d = json.loads(text)
        pops = tuple(Population(**p) for p in d.pop("populations"))
        return cls(populations=pops, notes=tuple(d.pop("notes")), cached=True, **d)


# ---- reading -----------------------------------------------------------------------------------
def read_sample(path: str | Path, *, sample_id: str | None = None) -> tuple[Any, list[str]]:
    """A FlowKit Sample of an FCS file and notes. A file whose data offsets are off by one
    byte (a known exporter quirk) is read anyway and the note says so."""
    import flowkit as fk

    notes: list[str] = []
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sample = fk.Sample(path, sample_id=sample_id or path.name)
        except Exception as exc:
            if "off by" not in str(exc):
                raise
            sample = fk.Sample(path, sample_id=sample_id or path.name,
                               ignore_offset_error=True)
            notes.append("the file's data offsets ($BEGINDATA/$ENDDATA) are off by one byte; "
                         "read anyway, as other FCS readers do")
    return sample, notes


def _file_stamp(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return path, st.st_size, st.st_mtime_ns


@lru_cache(maxsize=16)
def _parsed(stamp: tuple[str, int, int]) -> tuple[str, Any]:
    """("gml", GatingStrategy) or ("wsp", parse_wsp dict), parsed once per process."""
    import flowkit as fk

    path = stamp[0]
    if path.lower().endswith(_WSP):
        return "wsp", fk.parse_wsp(path)
    return "gml", fk.parse_gating_xml(path)


def load_strategy(gates: str | Path, *, sample_name: str = "", group: str = "All Samples"
                  ) -> tuple[Any, str]:
    """The GatingStrategy a sample is gated with, and a note when it is borrowed: a Gating-ML
    file has one for all samples; a workspace has one per sample, and a sample it does not
    hold is gated with the tree of the first sample of `group`."""
    kind, parsed = _parsed(_file_stamp(str(gates)))
    if kind == "gml":
        return parsed, ""
    samples = parsed["samples"]
    if sample_name in samples:
        return samples[sample_name]["gating_strategy"], ""
    stem = Path(sample_name).stem
    for name, entry in samples.items():
        uri = str(entry.get("sample_uri") or "").replace("%20", " ")
        if Path(name).stem == stem or (uri and Path(uri).name == sample_name):
            return entry["gating_strategy"], ""
    members = parsed["groups"].get(group, {}).get("samples", []) or list(samples)
    if not members:
        raise ValueError(f"the workspace {Path(gates).name} holds no samples with gates")
    template = members[0]
    return samples[template]["gating_strategy"], (
        f"not in the workspace; gated with the tree of {template} (group {group!r})")


def gate_tree(strategy: Any) -> list[tuple[str, str, str]]:
    """(population path, gate id, parent path) of every population in tree order."""
    from flowkit.exceptions import QuadrantReferenceError

    out = []
    for gate_id, path in strategy.get_gate_ids():
        try:
            if type(strategy.get_gate(gate_id, path)).__name__ == "QuadrantGate":
                continue    # the container of the quadrants, not a population itself
        except QuadrantReferenceError:
            pass            # a quadrant of a quadrant gate: a population
        full = "/" + "/".join((*path[1:], gate_id))
        out.append((full, gate_id, _population_parent(strategy, path)))
    return out


def _population_parent(strategy: Any, path: tuple[str, ...]) -> str:
    """Path of the population a gate at `path` is drawn in: a quadrant gate's quadrants lie
    in the quadrant gate's own parent."""
    parts = list(path[1:])
    if parts:
        try:
            gate = strategy.get_gate(parts[-1], tuple(["root", *parts[:-1]]))
            if type(gate).__name__ == "QuadrantGate":
                parts = parts[:-1]
        except Exception:  # noqa: BLE001 - quadrant references raise; they are populations
            pass
    return "/" + "/".join(parts) if parts else ""


def _needed_channels(strategy: Any) -> dict[str, str]:
    """Channel -> gate id, for every dimension some gate reads (ratio and boolean excluded)."""
    from flowkit.exceptions import QuadrantReferenceError

    need: dict[str, str] = {}
    for gate_id, path in strategy.get_gate_ids():
        try:
            gate = strategy.get_gate(gate_id, path)
        except QuadrantReferenceError:
            continue
        for dim in getattr(gate, "dimensions", None) or []:
            name = getattr(dim, "dimension_ref", None) or getattr(dim, "id", None)
            if type(dim).__name__ == "RatioDimension" or not name:
                continue
            need.setdefault(name, gate_id)
    return need


def _missing_channels(strategy: Any, sample: Any) -> list[tuple[str, str]]:
    labels = set(sample.pnn_labels) | {s for s in sample.pns_labels if s} | {
        p.replace("/", "_") for p in sample.pnn_labels}
    known = set(labels)
    for m in strategy.comp_matrices.values():
        if set(m.detectors) <= labels:
            known |= set(m.fluorochromes or ())
    return [(ch, gate) for ch, gate in _needed_channels(strategy).items() if ch not in known]


def compensation_matrix(sample: Any, spec: str, base: Path | None = None) -> tuple[Any, str]:
    """The Matrix the option names for this sample, and a note saying where it came from."""
    import flowkit as fk

    detectors = [sample.pnn_labels[i] for i in sample.fluoro_indices]
    fluoros = [sample.pns_labels[i] or sample.pnn_labels[i] for i in sample.fluoro_indices]
    if spec.lower() == "fcs":
        meta = sample.get_metadata()
        spill = meta.get("spillover") or meta.get("spill")
        if not spill:
            raise ValueError("has no spillover keyword ($SPILLOVER or SPILL) to compensate with")
        # the keyword names its own channels (often fewer than all fluorescence channels)
        parts = [p.strip() for p in str(spill).split(",")]
        if parts and parts[0].isdigit() and len(parts) > int(parts[0]):
            detectors = parts[1:1 + int(parts[0])]
            fluoros = [sample.pns_labels[sample.pnn_labels.index(d)] or d
                       if d in sample.pnn_labels else d for d in detectors]
        m = fk.Matrix(spill, detectors, fluoros, null_channels=sample.null_channels)
        key = "$SPILLOVER" if meta.get("spillover") else "SPILL"
        return m, f"compensated with the file's own {key} keyword ({len(m.detectors)} channels)"
    path = Path(spec) if base is None else base / spec
    text = path.read_text(encoding="utf-8-sig")
    if "\t" in text.splitlines()[0]:
        text = "\n".join(",".join(line.split("\t")) for line in text.splitlines())
    header = [h.strip() for h in text.splitlines()[0].split(",") if h.strip()]
    m = fk.Matrix(text, header, [sample.pns_labels[sample.pnn_labels.index(h)] or h
                                 if h in sample.pnn_labels else h for h in header])
    return m, f"compensated with the matrix file {path.name} ({len(m.detectors)} channels)"


def with_compensation(strategy: Any, matrix: Any, sample: Any) -> Any:
    """A copy of `strategy` whose fluorescence dimensions use `matrix`."""
    import copy

    from flowkit.exceptions import QuadrantReferenceError

    gs = copy.deepcopy(strategy)
    ref = "study-compensation"
    gs.comp_matrices[ref] = matrix
    fluor = set(matrix.detectors) | set(matrix.fluorochromes or ())
    for gate_id, path in gs.get_gate_ids():
        try:
            gate = gs.get_gate(gate_id, path)
        except QuadrantReferenceError:
            continue
        for dim in getattr(gate, "dimensions", None) or []:
            name = getattr(dim, "dimension_ref", None) or getattr(dim, "id", None)
            if name in fluor or (dim.compensation_ref not in (None, "uncompensated")):
                dim.compensation_ref = ref
    return gs


def gate_file(job: GateJob) -> GateResult:
    """Gate one FCS file (pure: reads only the two files the job names)."""
    label = job.label or Path(job.fcs).name
    try:
        sample, notes = read_sample(job.fcs, sample_id=job.sample_name or Path(job.fcs).name)
    except FileNotFoundError:
        return GateResult(label, error=f"{label}: FCS file not found")
    except Exception as exc:  # noqa: BLE001 - every read failure is this file's error
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        return GateResult(label, error=f"{label}: cannot be read as an FCS file ({first}); "
                          "export it again from the cytometer software")
    try:
        strategy, borrowed = load_strategy(job.gates, sample_name=sample.id, group=job.group)
    except Exception as exc:  # noqa: BLE001
        return GateResult(label, error=f"{Path(job.gates).name}: cannot be read as Gating-ML "
                          f"2.0 or a FlowJo 10 workspace ({str(exc)[:200]})")
    if borrowed:
        notes.append(borrowed)
    missing = _missing_channels(strategy, sample)
    if missing:
        ch, gate = missing[0]
        have = ", ".join(n + (f" ({s})" if s and s != n else "")
                         for n, s in zip(sample.pnn_labels, sample.pns_labels, strict=False))
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        return GateResult(label, sample.event_count, error=(
            f"{label}: channel {ch!r} used by gate {gate!r}{more} is not in the file, which "
            f"has {have}; a different panel? Rename the channel or gate it with another file"),
            channel=ch)
    try:
        if job.compensation:
            matrix, note = compensation_matrix(sample, job.compensation)
            strategy = with_compensation(strategy, matrix, sample)
            notes.append(note)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # a channel transformed for several gates is transformed once (logicle is most of
            # the cost); the strategy is reused for the next file, so its cache is emptied
            try:
                res = strategy.gate_sample(sample, cache_events=True)
            finally:
                strategy.clear_cache()
    except Exception as exc:  # noqa: BLE001 - report, never crash the batch
        text = (str(exc).splitlines() or [type(exc).__name__])[0][:240]
        return GateResult(label, sample.event_count, error=f"{label}: gating failed ({text})")
    counts: dict[tuple[str, ...], int] = {}
    for row in res.report.itertuples(index=False):
        path = tuple(row.gate_path[1:])
        if row.quadrant_parent is not None:
            path = (*path, row.quadrant_parent)
        counts[(*path, row.gate_name)] = int(row.count)
    pops = []
    for full, gate_id, parent in gate_tree(strategy):
        key = tuple(p for p in full.split("/") if p)
        if key not in counts:
            continue
        gate_type = _gate_type(strategy, full)
        pops.append(Population(full, gate_id, parent, gate_type, counts[key]))
    return GateResult(label, int(sample.event_count), tuple(pops), tuple(notes))


def _gate_type(strategy: Any, full: str) -> str:
    parts = [p for p in full.split("/") if p]
    try:
        gate = strategy.get_gate(parts[-1], tuple(["root", *parts[:-1]]))
        return type(gate).__name__.replace("Gate", "").lower()
    except Exception:  # noqa: BLE001 - a quadrant
        return "quadrant"


# ---- many files: cache and processes -------------------------------------------------------
def _digest(path: str, memo: dict[str, str] | None = None) -> str:
    stamp = "|".join(map(str, _file_stamp(path)))
    if memo is not None and stamp in memo:
        return memo[stamp]
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    if memo is not None:
        memo[stamp] = h.hexdigest()
    return h.hexdigest()


def _unchanged(stamp: str) -> bool:
    path = stamp.rsplit("|", 2)[0]          # "path|size|mtime_ns"
    try:
        return "|".join(map(str, _file_stamp(path))) == stamp
    except OSError:
        return False


def job_key(job: GateJob, *, memo: dict[str, str] | None = None) -> str:
    """Cache key: content of the FCS file, the gate file and a matrix file, plus the options."""
    parts = [GATING_VERSION, _digest(job.fcs, memo), _digest(job.gates, memo),
             job.sample_name, job.group, job.compensation]
    if job.compensation and job.compensation.lower() != "fcs" and \
            Path(job.compensation).is_file():
        parts.append(_digest(job.compensation, memo))
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


Progress = Callable[[int, int, str], None]


@contextmanager
def _script_main_hidden() -> Iterator[None]:
    """While worker processes start, `__main__` is a bare module.

    A new multiprocessing child first runs the parent's `__main__` from its file. Inside
    Streamlit (and AppTest) `__main__` is the app script, so every gating worker would run
    app.py and die before gating a file. A main module imported by name (python -m) is left
    as it is: its child imports it by name, guarded by `if __name__ == "__main__"`."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None \
            or not getattr(main, "__file__", None):
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def gate_files(jobs: Sequence[GateJob], *, workers: int = 1, cache_dir: Path | None = None,
               progress: Progress | None = None, force: bool = False,
               fn: Callable[[GateJob], GateResult] = gate_file,
               executor: Executor | None = None) -> list[GateResult]:
    """Gate every job (results in job order). `executor` (a Dask cluster's, jobs.parallel)
    runs one file per task on it; else `workers` > 1 uses that many processes;
    `cache_dir` keeps one small JSON per (file, gate file, options), and the files' content
    hashes by name, size and modification time (digests.json) so that an unchanged study is
    not read again; `progress(done, total, label)` is called after each file. `fn` is the
    per-file function (a module-level, picklable GateJob -> GateResult; default gate_file)."""
    memo: dict[str, str] = {}
    memo_file = cache_dir / "digests.json" if cache_dir is not None else None
    if memo_file is not None and memo_file.is_file():
        try:
            memo = dict(json.loads(memo_file.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            memo = {}
    known = len(memo)
    keys: list[str | None] = []
    results: list[GateResult | None] = [None] * len(jobs)
    for i, job in enumerate(jobs):
        try:
            key = job_key(job, memo=memo) if cache_dir is not None else None
        except OSError:
            key = None                 # a missing file: gate_file reports it
        keys.append(key)
        hit = cache_dir / f"gate-{key}.json" if key and cache_dir is not None else None
        if hit is not None and hit.is_file() and not force:
            try:
                results[i] = GateResult.from_json(hit.read_text(encoding="utf-8"))
            except (OSError, ValueError, TypeError):
                results[i] = None
    if memo_file is not None and len(memo) != known:
        memo = {k: v for k, v in memo.items() if _unchanged(k)}
        try:
            memo_file.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(memo_file, json.dumps(memo))
        except OSError:
            pass
    todo = [i for i, r in enumerate(results) if r is None]
    total, done = len(jobs), len(jobs) - len(todo)
    if progress:
        progress(done, total, "cached")

    def finish(i: int, res: GateResult) -> None:
        nonlocal done
        results[i] = res
        done += 1
        key = keys[i]
        if key and cache_dir is not None and res.ok:
            try:
                cache_dir.mkdir(parents=True, exist_ok=True)
                _atomic_write(cache_dir / f"gate-{key}.json", res.to_json())
            except OSError:
                pass                   # a read-only cache only costs time
        if progress:
            progress(done, total, res.label)

    if executor is not None and todo:
        # a Dask worker that dies is replaced and its file gated again on another worker;
        # a file that kills every worker it meets fails alone
        futures = {executor.submit(fn, jobs[i]): i for i in todo}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - a crashed job is this file's error
                res = GateResult(jobs[i].label, error=f"{jobs[i].label}: gating failed "
                                 f"({type(exc).__name__}: {str(exc)[:200]})")
            finish(i, res)
    elif workers <= 1 or len(todo) <= 1 or multiprocessing.current_process().daemon:
        # (a daemonic process, such as a jobs worker, may not start processes of its own)
        for i in todo:
            finish(i, fn(jobs[i]))
    else:
        # forkserver, not fork: the caller may be a threaded server (Streamlit) holding
        # locks, e.g. polars' thread pool, that a forked child would inherit mid-use; the
        # server process imports FlowKit once and is reused by every later pool
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["flowkit", "data_loaders.formats.gating"])
        with _script_main_hidden(), ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
            futures = {pool.submit(fn, jobs[i]): i for i in todo}
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    continue           # a worker died: its file and the unfinished ones below
                except Exception as exc:  # noqa: BLE001 - a crashed job is this file's error
                    res = GateResult(jobs[i].label, error=f"{jobs[i].label}: gating failed "
                                     f"({type(exc).__name__}: {str(exc)[:200]})")
                finish(i, res)
        # A dead worker (out of memory, killed) breaks the whole pool. Each file it left is
        # gated again in a process of its own, so only the file that kills a worker fails.
        for i in [i for i in todo if results[i] is None]:
            with _script_main_hidden(), ProcessPoolExecutor(max_workers=1, mp_context=ctx) as alone:
                try:
                    res = alone.submit(fn, jobs[i]).result()
                except BrokenProcessPool:
                    res = GateResult(jobs[i].label, error=(
                        f"{jobs[i].label}: the process gating this file ended abruptly (out "
                        "of memory, or killed); the other files are gated"))
            finish(i, res)
    return [r for r in results if r is not None]
