"""The run record: what a run produced, as one frozen value that is written, read back and merged.

Everything after generation consumes it: the gates, the summary, the results file, `utg report` and `utg merge`, and
the controller of a pytest-xdist run, which merges its workers' parts. The figures and the gate verdicts are derived
from the probes (seeded, order-fixed statistics), so a record read back or merged from shards judges exactly as the
live run did.

On disk (`--utg-results`) a record is JSON Lines: a header line (`"kind": "run"`, with the format version, the run's
identity and its verdicts), then one line per probe (`"kind": "probe"`), valid against schemas/record.schema.json.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import math
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from utg_pytest import __version__, gates
from utg_pytest.figures import Figures, compute
from utg_pytest.model import GateVerdict, LogError, LogFile, Message, ProbeResult
from utg_pytest.scoring.labels import Agreement
from utg_pytest.settings import Settings

FORMAT = 2
"""Version of the file layout; a reader refuses a newer one rather than misread it."""


class RecordError(ValueError):
    """A record that cannot be read, or records that cannot be merged; the message says which file and why."""


@dataclass(frozen=True)
class ProbeRecord:
    """One probe of a run: where it came from, what was masked, and how the model did."""

    probe_id: str
    source: str
    line: int
    conversation_id: str
    turn: int
    context_messages: int
    context_tail: tuple[Message, ...]
    """The last messages of the context the model saw, for reports."""
    target: str
    fingerprint: str
    """A hash of the whole context and the real turn: pairs a probe across runs when its id moved (a renamed log)."""
    thresholds: dict[str, float]
    result: ProbeResult
    passed: bool | None
    """Per-probe thresholds met; None without a prediction."""
    sweep: dict[str, ProbeResult] = field(default_factory=dict)
    """The same probe at each extra --utg-temperatures value, keyed by the temperature as written (`0.7`)."""
    shuffled: ProbeResult | None = None
    """The same probe with a shuffled assistant turn, when it was in the shuffle control's sample."""
    slices: dict[str, str] = field(default_factory=dict)
    """The probe's value of each --utg-slice field."""


@dataclass(frozen=True)
class RunHeader:
    """What produced a run, enough to tell whether two runs are comparable and to judge it again."""

    utg_version: str
    created: str
    settings: Settings
    backend: str
    """The model under test, readably, as known without starting it (endpoint and requested model, or GGUF file)."""
    backend_key: str
    """What pins it across runs: the endpoint and requested model, or the GGUF file's content hash."""
    served_by: str | None
    """What the started backend called itself (the endpoint's first listed model, say); None if nothing started."""
    embedding_model: str
    prompt_fingerprint: str
    labeller: str
    scorers: dict[str, str]
    """Metric name -> scorer version, in the order metrics are reported."""
    logs: tuple[LogFile, ...]
    log_errors: tuple[LogError, ...]
    probes_in_logs: int
    """Probes the logs hold after --utg-probe and --utg-max-probes, before sharding and pytest's selection."""
    probes_in_shard: int
    """Of those, the probes of this run's shard (all of them without --utg-shard)."""
    pii: dict[str, int] = dataclasses.field(default_factory=dict)
    """Personal data the guard found in what would have been sent, by kind (never the values)."""
    pii_conversations: int = 0
    """Conversations it was found in."""
    conversations: int = 0
    """Valid conversations in the logs, so the summary can account for every record read."""
    conversations_with_probes: int = 0
    """Of those, the ones with a probe: a non-blank user turn right after an assistant turn."""
    label_agreement: Agreement | None = None
    """How often the labeller that labelled this run agrees with a careful human reader, where that was measured
    (the heuristic labeller's, on the real-prediction corpus); every report shows it next to the label rates."""

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.scorers)


@dataclass(frozen=True)
class RunRecord:
    header: RunHeader
    probes: tuple[ProbeRecord, ...]
    failure: str | None = None
    """Why the run could not produce predictions at all (a backend that did not start, an unusable cache)."""

    @functools.cached_property
    def figures(self) -> Figures:
        sweep: dict[float, list[ProbeResult]] = {}
        for probe in self.probes:
            for temperature, result in probe.sweep.items():
                sweep.setdefault(float(temperature), []).append(result)
        perturbed = [replace(p.shuffled, probe_id=p.probe_id + "::shuffled") for p in self.probes if p.shuffled]
        return compute(
            [p.result for p in self.probes],
            self.header.metrics,
            self.header.settings.generation.temperature,
            sweep,
            perturbed,
        )

    @functools.cached_property
    def verdicts(self) -> tuple[GateVerdict, ...]:
        settings = self.header.settings
        return gates.judge(settings.gates, self.figures, settings.controls.control == "shuffle")

    def verdict(self, name: str) -> GateVerdict:
        for verdict in self.verdicts:
            if verdict.name == name:
                return verdict
        raise KeyError(name)

    def probe(self, probe_id: str) -> ProbeRecord | None:
        return self._by_id.get(probe_id)

    @functools.cached_property
    def _by_id(self) -> dict[str, ProbeRecord]:
        return {p.probe_id: p for p in self.probes}

    @property
    def passed(self) -> bool:
        return self.failure is None and all(v.passed for v in self.verdicts)


# --- encoding: dataclasses <-> JSON, driven by their type hints ---------------------------------------------------


def encode(value: Any) -> Any:
    """A JSON-ready value: dataclasses become objects, tuples lists; non-finite floats are refused (not JSON)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} cannot be written as JSON")
    return value


def decode(kind: Any, data: Any) -> Any:
    """The value of type `kind` that `encode` wrote as `data`."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if data is None and type(None) in options:
            return None
        return decode(next(o for o in options if o is not type(None)), data)
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], item) for item in data)
        return tuple(decode(arg, item) for arg, item in zip(args, data, strict=True))
    if origin is dict:
        key, item = typing.get_args(kind)
        return {decode(key, k): decode(item, v) for k, v in data.items()}
    if origin is typing.Literal:
        return data
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        hints = _hints(kind)
        given = {f.name: decode(hints[f.name], data[f.name]) for f in dataclasses.fields(kind) if f.name in data}
        return kind(**given)
    if kind is float and isinstance(data, int):
        return float(data)
    return data


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)


# --- files ---------------------------------------------------------------------------------------------------------


def stored_settings(settings: Settings) -> Settings:
    """Settings as a record keeps them: the base URLs without the user and password they may carry (the backend
    sends those as HTTP Basic auth; a results file, baseline or run store must never hold them)."""
    from utg_pytest.generate import without_credentials

    def bare(url: str | None) -> str | None:
        return without_credentials(url) if url else url

    return dataclasses.replace(
        settings,
        model=dataclasses.replace(settings.model, base_url=bare(settings.model.base_url)),
        judge=dataclasses.replace(settings.judge, base_url=bare(settings.judge.base_url)),
        drift=dataclasses.replace(settings.drift, compare_base_url=bare(settings.drift.compare_base_url)),
    )


def header_line(record: RunRecord) -> dict[str, Any]:
    header = dataclasses.replace(record.header, settings=stored_settings(record.header.settings))
    return {
        "kind": "run",
        "format": FORMAT,
        **encode(header),
        "failure": record.failure,
        "verdicts": encode(record.verdicts),
    }


def lines(record: RunRecord) -> Iterator[dict[str, Any]]:
    yield header_line(record)
    for probe in record.probes:
        yield {"kind": "probe", **encode(probe)}


def dumps(record: RunRecord) -> str:
    return "".join(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n" for line in lines(record))


def write(path: Path, record: RunRecord) -> None:
    """Written to a temporary file first, so a reader never sees half a record; gzip-compressed when the name ends
    in .gz (about a fifth of the size: a baseline of 10,000 probes is then a few MB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    data = dumps(record).encode("utf-8")
    partial.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    partial.replace(path)


def loads(text: str, name: str = "<record>") -> RunRecord:
    header: RunHeader | None = None
    failure: str | None = None
    probes: list[ProbeRecord] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{name}:{number}: not JSON: {exc.msg}") from None
        kind = line.get("kind") if isinstance(line, dict) else None
        if number == 1:
            if kind != "run" or "format" not in line:
                raise RecordError(
                    f"{name}:1: not a utg run record (its first line has no run header; results files of utg-pytest "
                    f"before format {FORMAT} cannot be read)"
                )
            if not isinstance(line["format"], int) or line["format"] > FORMAT:
                raise RecordError(
                    f"{name}: record format {line['format']} is newer than this utg-pytest ({__version__}) reads "
                    f"(format {FORMAT}): upgrade utg-pytest to read it"
                )
            try:
                header = decode(RunHeader, line)
            except (KeyError, TypeError, ValueError, StopIteration) as exc:
                raise RecordError(f"{name}:1: run header unreadable: {type(exc).__name__}: {exc}") from None
            failure = line.get("failure")
        elif kind == "probe":
            try:
                probes.append(decode(ProbeRecord, line))
            except (KeyError, TypeError, ValueError, StopIteration) as exc:
                raise RecordError(f"{name}:{number}: probe line unreadable: {type(exc).__name__}: {exc}") from None
        else:
            raise RecordError(f"{name}:{number}: unknown line kind {kind!r}")
    if header is None:
        raise RecordError(f"{name}: empty, not a utg run record")
    return RunRecord(header, tuple(probes), failure)


def read(path: Path) -> RunRecord:
    try:
        data = path.read_bytes()
        text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8")
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (EOFError, gzip.BadGzipFile) as exc:
        raise RecordError(f"{path}: damaged gzip: {exc}") from None
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not UTF-8 at byte {exc.start}") from None
    return loads(text, str(path))


# --- merging -------------------------------------------------------------------------------------------------------

IDENTITY_FIELDS = ("utg_version", "backend_key", "embedding_model", "prompt_fingerprint", "labeller", "scorers", "logs")
"""What two parts of one run must share. The settings must match too, apart from the shard, where files are (two CI
jobs check out to different directories; the identities above pin what those files hold) and where results go."""
MACHINE_LOCAL = (
    "logs", "shard", "results", "cache", "gguf", "chat_template", "embedding_model", "baseline", "update_baseline",
    "html", "markdown", "step_summary", "save_run", "compare_results", "compare_gguf",
)  # fmt: skip
OPERATIONAL = ("threads", "concurrency", "rpm", "tpm", "timeout", "cache_mode", "dry_run")
"""How a part ran, not what it measured: CI jobs on other machines may differ here."""


def _comparable_settings(settings: Settings) -> dict[str, Any]:
    return {k: v for k, v in settings.flat().items() if k not in MACHINE_LOCAL + OPERATIONAL}


def _order(header: RunHeader) -> Any:
    position = {log.name: index for index, log in enumerate(header.logs)}

    def key(probe: ProbeRecord) -> tuple[int, int, int, str]:
        return position.get(probe.source, len(position)), probe.line, probe.turn, probe.probe_id

    return key


def merge(parts: Sequence[RunRecord], names: Sequence[str] | None = None, complete: bool = True) -> RunRecord:
    """One record from parts of one run (shards, or pytest-xdist workers): they must come from the same logs, model,
    prompt, scorers and settings, and hold disjoint probes; with `complete`, shards 1..N must all be there and have
    run every probe of their shard. Probes come out in log order, as a serial run orders them."""
    if not parts:
        raise RecordError("nothing to merge")
    given = list(names) if names is not None else [f"record {i + 1}" for i in range(len(parts))]
    # A part that did not fail goes first: its header, which knows every identity, becomes the merged one.
    ordered = sorted(zip(parts, given, strict=True), key=lambda pair: pair[0].failure is not None)
    parts, labels = [p for p, _ in ordered], [label for _, label in ordered]
    first = parts[0].header
    for part, label in zip(parts[1:], labels[1:], strict=True):
        for name in IDENTITY_FIELDS:
            ours, theirs = getattr(part.header, name), getattr(first, name)
            if ours != theirs and not ((part.failure and not ours) or (parts[0].failure and not theirs)):
                # A part that failed before it knew an identity (its cache could not open) still merges: its
                # probes carry the failure.
                raise RecordError(
                    f"{label} is not comparable with {labels[0]}: {name} differs "
                    f"({getattr(part.header, name)!r} vs {getattr(first, name)!r})"
                )
        ours, theirs = _comparable_settings(part.header.settings), _comparable_settings(first.settings)
        differing = [f"--utg-{k.replace('_', '-')}" for k in ours if ours[k] != theirs[k]]
        if differing:
            raise RecordError(f"{label} was run with other settings than {labels[0]}: {', '.join(differing)}")
    seen: dict[str, str] = {}
    probes: list[ProbeRecord] = []
    for part, label in zip(parts, labels, strict=True):
        for probe in part.probes:
            if probe.probe_id in seen:
                raise RecordError(f"probe {probe.probe_id} is in both {seen[probe.probe_id]} and {label}")
            seen[probe.probe_id] = label
            probes.append(probe)
    if complete:
        _check_complete(parts, labels)
    probes.sort(key=_order(first))
    shards = [p.header.settings.logs.shard for p in parts]
    in_shards = sum(p.header.probes_in_shard for p in parts) if all(shards) else first.probes_in_shard
    header = replace(
        first,
        settings=replace(first.settings, logs=replace(first.settings.logs, shard=None)),
        probes_in_shard=in_shards,
        served_by=next((p.header.served_by for p in parts if p.header.served_by), None),
    )
    failure = next((p.failure for p in parts if p.failure), None)
    return RunRecord(header, tuple(probes), failure)


def _check_complete(parts: Sequence[RunRecord], labels: Sequence[str]) -> None:
    shards = [p.header.settings.logs.shard for p in parts]
    if not any(shards):
        return
    if not all(shards):
        raise RecordError("cannot merge sharded and unsharded records")
    counts = {shard[1] for shard in shards if shard}
    if len(counts) != 1:
        raise RecordError(f"records of different shard counts: {', '.join(f'N={n}' for n in sorted(counts))}")
    total = counts.pop()
    present = sorted(shard[0] for shard in shards if shard)
    missing = sorted(set(range(1, total + 1)) - set(present))
    if missing:
        raise RecordError(f"incomplete: shard(s) {', '.join(f'{k}/{total}' for k in missing)} missing")
    if len(present) != len(set(present)):
        raise RecordError("a shard is given twice")
    for part, label in zip(parts, labels, strict=True):
        if len(part.probes) != part.header.probes_in_shard:
            raise RecordError(
                f"{label} ran {len(part.probes)} of the {part.header.probes_in_shard} probes of its shard "
                "(deselected with -k or --deselect?): the merged gates would not cover every probe"
            )


def canonical(records: Iterable[ProbeRecord]) -> list[dict[str, Any]]:
    """Probe records without what varies between two runs of the same thing (timings, cache hits), for comparing
    runs."""

    def strip(result: Any) -> Any:
        if isinstance(result, dict):
            return {k: strip(v) for k, v in result.items() if k not in ("latency_s", "cached")}
        if isinstance(result, list):
            return [strip(v) for v in result]
        return result

    return [strip(encode(r)) for r in records]
