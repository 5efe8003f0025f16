"""One utg run without pytest: load logs, build probes, generate and score the selected ones, and return the run
record.

The pytest plugin drives this; so do `utg`, scripts and the benchmarks. Loading needs only the ingest modules; the
generation and scoring modules are imported when their stage runs, so collecting a large log stays cheap.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from utg_pytest import __version__, ingest
from utg_pytest.model import LogError, LogFile, Message, Probe, ProbeResult
from utg_pytest.probes import ProbeSet, build_probes, shard_of
from utg_pytest.safe_text import node_part
from utg_pytest.scoring.labels import HEURISTIC, HEURISTIC_AGREEMENT, VERSION
from utg_pytest.settings import BackendConfig, DriftSettings, GenerationConfig, Settings

if TYPE_CHECKING:
    from utg_pytest.baseline import Comparison
    from utg_pytest.generate import Backend, BackendFactory
    from utg_pytest.guard import ScanMemory
    from utg_pytest.ingest.formats import LogFormat
    from utg_pytest.record import ProbeRecord, RunHeader, RunRecord
    from utg_pytest.runner import CachePolicy, Progress
    from utg_pytest.scoring.embeddings import TextVectors
    from utg_pytest.scoring.scorers import Scorer
    from utg_pytest.slicing import SliceDrift, SliceVerdict

CONTEXT_KEPT = 3
"""Messages of a probe's context a record keeps, for reports."""
HEURISTIC_LABELLER = f"{HEURISTIC}-{VERSION}"


def display_name(path: Path, rootdir: Path) -> str:
    """How a log file is named in node ids and messages: relative to the rootdir when inside it, made safe as a node
    id part (a file named with `::` would split its node id)."""
    try:
        name = path.relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        name = path.as_posix()
    return node_part(name)


@dataclass(frozen=True)
class Loaded:
    """The logs of a run, read: their files, their probes (this shard's, in log order) and their invalid lines."""

    paths: tuple[Path, ...]
    files: tuple[LogFile, ...]
    probes: Sequence[Probe]
    errors: tuple[LogError, ...]
    unsharded: ProbeSet
    """Every probe after --utg-probe and --utg-max-probes: the pool the references and the shuffle control draw
    from, the same for every shard."""


def load(settings: Settings, formats: Sequence[LogFormat] | None = None) -> Loaded:
    """Read the logs, in `formats` (default: the built-in ones), and build their probes. The files' digests, which
    the run record names them by, are hashed on a thread of their own meanwhile (hashing releases the GIL): on a large
    log they cost a seventh of the load."""
    from concurrent.futures import ThreadPoolExecutor

    from utg_pytest.cache import file_digest
    from utg_pytest.settings import SettingsError

    rootdir = Path(settings.rootdir)
    logs = settings.logs
    known = tuple(formats) if formats is not None else log_formats(settings)
    if logs.format != "auto" and logs.format not in {found.name for found in known}:
        listed = ", ".join(["auto", *(found.name for found in known)])
        raise SettingsError(f"--utg-format {logs.format}: no such format; known: {listed}")
    paths = log_paths(settings)
    names = {path: display_name(path, rootdir) for path in paths}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="utg-digest") as pool:
        digests = [pool.submit(file_digest, path) for path in paths]
        loaded = ingest.load(paths, names, log_format=logs.format, formats=known, max_line_bytes=logs.max_line_bytes)
        probes = build_probes(
            loaded.logs,
            mode=logs.probe,
            max_probes=logs.max_probes,
            seed=logs.sample_seed,
            max_context_turns=logs.max_context_turns,
            max_context_chars=logs.max_context_chars,
        )
        files = tuple(
            LogFile(names[path], digest.result(), path.stat().st_size)
            for path, digest in zip(paths, digests, strict=True)
        )
    sharded = probes.shard(*logs.shard) if logs.shard else probes
    return Loaded(tuple(paths), files, sharded, loaded.errors, probes)


def log_paths(settings: Settings) -> list[Path]:
    """The log files of a run: a directory or glob takes the native format's files, or, when the format may be
    another, theirs too."""
    logs = settings.logs
    suffixes = ingest.LOG_SUFFIXES if logs.format == "openai" else ingest.ANY_FORMAT_SUFFIXES
    return ingest.resolve_paths(logs.logs, suffixes)


def log_formats(settings: Settings) -> tuple[LogFormat, ...]:
    """The formats logs are read in: the built-in ones, the table format with the configured columns and roles."""
    from utg_pytest.ingest.registry import builtin_formats
    from utg_pytest.ingest.table import TableFormat
    from utg_pytest.settings import SettingsError

    logs = settings.logs
    try:
        table = TableFormat(columns=dict(logs.columns), roles=dict(logs.roles))
    except ValueError as exc:
        raise SettingsError(f"--utg-columns / --utg-roles: {exc}") from None
    return tuple(table if found.name == "table" else found for found in builtin_formats())


class Run:
    """One run of the pipeline over loaded logs, in the order pytest drives it: select the probes, then produce the
    record once. Split into `groups` (pytest-xdist workers), each group's record is produced when a probe of it is
    first asked for (`record_for`): a worker runs whole groups, so it generates exactly the probes it will test.

    A run compared with a baseline has two arms over the same probes: this run, and the baseline, either recorded
    (`baseline`, from --utg-baseline) or generated alongside this run (the --utg-compare-* options), through the same
    stages and cache, so a re-run regenerates only the arm that changed."""

    def __init__(
        self,
        settings: Settings,
        loaded: Loaded,
        scorers: Sequence[Scorer] | None = None,
        groups: int | None = None,
        factory: BackendFactory | None = None,
        baseline: RunRecord | None = None,
        baseline_factory: BackendFactory | None = None,
        factories: Callable[[BackendConfig], BackendFactory] | None = None,
        prepare: Callable[[Probe], Probe] | None = None,
    ) -> None:
        from utg_pytest.generate import factory_for
        from utg_pytest.scoring.scorers import BUILT_IN

        self.settings = settings
        self.loaded = loaded
        self.scorers = tuple(scorers or BUILT_IN)
        self.groups = groups
        self.factories = factories or factory_for
        """Which backend factory serves a model configuration (the plugins' pytest_utg_make_backend)."""
        self.prepare = prepare
        """What is sent for a probe, adjusted (the plugins' pytest_utg_prepare_probe)."""
        self.factory = factory or self.factories(settings.model)
        self.baseline = baseline
        """The recorded arm this run is compared with (--utg-baseline), when there is one."""
        self.live = settings.baseline_arm()
        """The settings of the baseline arm generated in this run (--utg-compare-*), when there is one."""
        self.baseline_factory = (baseline_factory or self.factories(self.live.model)) if self.live else None
        self._comparison: Comparison | str | None = None
        self._selected: tuple[Probe, ...] = tuple(loaded.probes)
        self._record: RunRecord | None = None
        self._live_record: RunRecord | None = None
        self._parts: dict[int, tuple[RunRecord, RunRecord | None]] = {}
        self._slice_verdicts: tuple[SliceVerdict, ...] | None = None
        self._slice_drifts: tuple[SliceDrift, ...] | None = None

    @property
    def compared(self) -> bool:
        """Whether this run has a baseline arm to be gated against."""
        return self.baseline is not None or self.live is not None

    def select(self, probe_ids: Iterable[str]) -> None:
        """Restrict generation to the probes pytest will run (after -k, --deselect, --lf)."""
        wanted = set(probe_ids)
        self._selected = tuple(p for p in self.loaded.probes if p.id in wanted)

    @property
    def selected(self) -> tuple[Probe, ...]:
        return self._selected

    def record(self, progress: Progress | None = None) -> RunRecord:
        """The record of every selected probe, generated on first call (with the live baseline arm's, if any)."""
        if self._record is None:
            self._record = execute(
                self.settings, self.loaded, self._selected, self.scorers, self.factory, progress, **self._hooks()
            )
            self._live_record = self._live_arm(self._selected, progress)
        return self._record

    def _live_arm(
        self, probes: Sequence[Probe], progress: Progress | None, candidates: Sequence[Probe] | None = None
    ) -> RunRecord | None:
        if self.live is None or self.baseline_factory is None:
            return None
        return execute(
            self.live, self.loaded, probes, self.scorers, self.baseline_factory, progress, candidates,
            arm="baseline", judged_as=self.settings.model, **self._hooks(),
        )  # fmt: skip

    def _hooks(self) -> dict[str, Any]:
        return {"factories": self.factories, "prepare": self.prepare}

    def record_for(self, probe_id: str) -> RunRecord:
        """A record holding this probe: the run's, or, split into groups, its group's."""
        if self.groups is None:
            return self.record()
        group = shard_of(probe_id, self.groups)
        if group not in self._parts:
            probes = [p for p in self._selected if shard_of(p.id, self.groups) == group]
            self._parts[group] = (
                execute(
                    self.settings,
                    self.loaded,
                    probes,
                    self.scorers,
                    self.factory,
                    None,
                    self._selected,
                    **self._hooks(),
                ),
                self._live_arm(probes, None, self._selected),
            )
        return self._parts[group][0]

    def baseline_record(self) -> RunRecord | None:
        """The baseline arm: the recorded one, or the one generated in this run (after `record`)."""
        return self.baseline if self.baseline is not None else self._live_record

    def drift(self, record: RunRecord | None = None, base: RunRecord | None = None) -> Comparison | str | None:
        """This run against the baseline (or why they cannot be compared); None without a baseline. Computed once,
        over `record` (default: this run's) and `base` (default: the baseline arm)."""
        if not self.compared:
            return None
        if self._comparison is None:
            new = record or self.record()
            found = base or self.baseline_record() or self._live_arm(self._selected, None)
            assert found is not None, "a compared run has a recorded or a live baseline arm"
            self._comparison = judge_drift(found, new, self.settings.drift)
        return self._comparison

    def slice_verdicts(self) -> tuple[SliceVerdict, ...]:
        """The run gates judged per slice (--utg-slice-gates), computed once over this run's record."""
        if self._slice_verdicts is None:
            from utg_pytest.slicing import judge

            self._slice_verdicts = judge(self.record(), self.settings.gates, self.settings.drift.alpha)
        return self._slice_verdicts

    def slice_drifts(self) -> tuple[SliceDrift, ...]:
        """The drift per slice (--utg-slice-gates with a baseline arm), computed once."""
        if self._slice_drifts is None:
            from utg_pytest.baseline import Comparison
            from utg_pytest.slicing import drift_by_slice

            found = self.drift()
            settings = self.settings
            self._slice_drifts = (
                drift_by_slice(found, settings.slices.fields, settings.drift, [s.name for s in self.scorers])
                if isinstance(found, Comparison)
                else ()
            )
        return self._slice_drifts

    def slice_values(self) -> dict[str, list[str]]:
        """Each --utg-slice field's values over this run's probes, as the record will hold them."""
        from utg_pytest.slicing import NONE, values_of

        fields = self.settings.slices.fields
        guarded = pii_mode(self.settings) != "off"
        found: dict[str, set[str]] = {field: set() for field in fields}
        for probe in self.loaded.probes:
            for field, value in values_of(probe, fields, guarded).items():
                found[field].add(value)
        return {field: sorted(values, key=lambda v: (v == NONE, v)) for field, values in found.items()}

    def parts(self) -> list[RunRecord]:
        """The records of the groups produced so far."""
        return [self._parts[group][0] for group in sorted(self._parts)]

    def baseline_parts(self) -> list[RunRecord]:
        """The live baseline arm's records of the groups produced so far."""
        return [part for group in sorted(self._parts) if (part := self._parts[group][1]) is not None]

    def plan(self) -> list[tuple[int, int]]:
        requests = plan(self.settings, self.loaded, self._selected)
        if self.live is not None:
            requests += plan(self.live, self.loaded, self._selected)
        return requests


def baseline_name(settings: Settings) -> str:
    """How the summary and the reports name the baseline arm: its file, or the model generating it in this run."""
    live = settings.baseline_arm()
    if live is None:
        return settings.drift.baseline or ""
    from utg_pytest.generate import factory_for

    generation = live.generation
    return (
        f"{factory_for(live.model).describe(live.model)}, generated in this run (prompt {generation.prompt}, "
        f"temperature {generation.temperature:g})"
    )


def judge_drift(base: RunRecord, new: RunRecord, settings: DriftSettings) -> Comparison | str:
    """The drift verdicts, or why there are none: a baseline arm that could not run is not a comparison."""
    from utg_pytest.baseline import judge

    if base.failure is not None and not any(p.result.ok for p in base.probes):
        return f"the baseline arm produced no prediction: {base.failure}"
    return judge(base, new, settings)


def _shuffled(settings: Settings, loaded: Loaded, probes: Sequence[Probe], candidates: Sequence[Probe]) -> list[Probe]:
    """The shuffle control's perturbed probes among `probes`. The sample is drawn from `candidates` (every selected
    probe, or every probe of the logs when sharded), so each part of a split run perturbs the probes a serial run
    would."""
    from utg_pytest.controls import SHUFFLED_SUFFIX, shuffle_probes

    controls = settings.controls
    pool = candidates if not settings.logs.shard else loaded.unsharded
    chosen = shuffle_probes(pool, loaded.unsharded, settings.logs.sample_seed, controls.control_probes)
    ours = {p.id for p in probes}
    return [p for p in chosen if p.id.removesuffix(SHUFFLED_SUFFIX) in ours]


def _stages(
    settings: Settings, loaded: Loaded, probes: Sequence[Probe], candidates: Sequence[Probe], arm: str = ""
) -> list[tuple[str, Sequence[Probe], GenerationConfig]]:
    """(name, probes, how they are generated) of each pass: the run, each extra temperature, the shuffle control."""
    generation = settings.generation
    stages = [(f"{arm} predictions".strip(), probes, generation)]
    for temperature in settings.controls.temperatures:
        if temperature != generation.temperature:
            stages.append(
                (f"predictions at temperature {temperature:g}", probes, replace(generation, temperature=temperature))
            )
    if settings.controls.control == "shuffle":
        stages.append(("shuffle-control predictions", _shuffled(settings, loaded, probes, candidates), generation))
    return stages


def execute(
    settings: Settings,
    loaded: Loaded,
    probes: Sequence[Probe],
    scorers: Sequence[Scorer],
    factory: BackendFactory,
    progress: Progress | None = None,
    candidates: Sequence[Probe] | None = None,
    arm: str = "",
    judged_as: BackendConfig | None = None,
    factories: Callable[[BackendConfig], BackendFactory] | None = None,
    prepare: Callable[[Probe], Probe] | None = None,
) -> RunRecord:
    """Generate and score `probes` (and their sweep and control variants), one backend for every stage, made by
    `factory`. A cache, backend or embedding model that cannot start fails every probe with the same message, in the
    record. `arm` names a baseline arm's stages in the progress lines; `judged_as` is the model configuration an LLM
    judge derives from (the candidate's, so that both arms of a comparison are labelled by the same judge)."""
    from utg_pytest.cache import EmbeddingCache, GenerationCache, file_digest
    from utg_pytest.generate import factory_for, prompt_fingerprint
    from utg_pytest.guard import guard
    from utg_pytest.runner import CachePolicy, Judge, LazyBackend, Stage, generate
    from utg_pytest.scoring.embeddings import Embedder, TextVectors
    from utg_pytest.scoring.judge import JUDGE_VERSION
    from utg_pytest.scoring.labels import identity as label_identity
    from utg_pytest.scoring.outcomes import heuristic
    from utg_pytest.scoring.phase import known_texts, references_for, remembered, score_stage
    from utg_pytest.scoring.scorers import versions

    config = settings.model
    embedder = Embedder(settings.output.embedding_model)
    policy = None
    store = None
    identity = ""
    embedding = embedder.name
    fingerprint = ""
    known = Identity(factory.describe(config), "", embedding, "", HEURISTIC_LABELLER, versions(scorers))
    mode = pii_mode(settings, judged_as)
    stage = f"cache {settings.cache_dir} unusable"
    cache = None
    try:
        cache = GenerationCache(settings.cache_dir) if settings.cache.mode != "off" else None
        digest = cache.digest if cache is not None else file_digest
        stage = "model backend could not start"
        identity = factory.identity(config, digest)
        fingerprint = prompt_fingerprint(factory, config, settings.generation.prompt)
        stage = "embedding model unusable"
        digests = [digest(path) for path in embedder.files()]
        embedding = embedder.identity(digests)
        if cache is not None:
            policy = CachePolicy(cache, settings.cache.mode, identity, fingerprint)
            store = EmbeddingCache(settings.cache_dir, "|".join([embedder.name, *digests]))
    except Exception as exc:  # an unusable model file or cache fails every probe with one message
        message = f"{stage}: {type(exc).__name__}: {exc}"
        results = [ProbeResult(p.id, None, None, {}, error=message, attempts=0) for p in probes]
        found = replace(known, backend_key=identity, embedding_model=embedding, prompt_fingerprint=fingerprint)
        if cache is not None:
            cache.close()
        return _record(settings, loaded, probes, results, found, None, message, guarded=mode != "off")

    known = replace(known, backend_key=identity, embedding_model=embedding, prompt_fingerprint=fingerprint)
    judge_settings = settings.judge
    judge = None
    labeller = None
    if judge_settings.llm:
        judge_config = judge_settings.backend(judged_as or config)
        judge_factory = (factories or factory_for)(judge_config)
        judge_identity = judge_factory.identity(judge_config, policy.cache.digest) if policy is not None else ""
        judge = Judge(LazyBackend(lambda: judge_factory.open(judge_config)), judge_identity)
        labeller = judge_label(judge_config)
        known = replace(known, labeller=f"{labeller}/judge-{JUDGE_VERSION}")

    stages = [Stage(*found) for found in _stages(settings, loaded, probes, candidates or probes, arm)]
    if prepare is not None:
        stages = [replace(done, probes=[prepare(p) for p in done.probes]) for done in stages]
        probes = stages[0].probes
    memory = policy.cache if policy is not None else None
    guarded = [guard(done.probes, mode, memory) for done in stages]
    blocked = {
        probe_id: ProbeResult(probe_id, None, None, {}, error=why, attempts=0)
        for found in guarded
        for probe_id, why in found.blocked.items()
    }
    unguarded = stages
    stages = [replace(done, probes=found.probes) for done, found in zip(stages, guarded, strict=True)]
    references = {}
    for done in stages:
        references.update(references_for(done.probes, settings.logs.sample_seed, loaded.unsharded))
    all_probes = [p for done in stages for p in done.probes]
    vectors = TextVectors(embedder, store)
    vectors.add(known_texts(all_probes, references))
    beside = Overlap(vectors, judged=judge is not None)
    backend = LazyBackend(lambda: factory.open(config), beside.started)
    try:
        # Every prediction, cached or new, reaches `vectors` as it settles; the known texts are in already.
        generated = generate(stages, backend, settings, policy, progress, beside.arrived, judge)
        table = vectors.finish()
        # Heuristic labels are kept in the cache: classifying is most of what a replayed probe costs.
        labels = None
        if policy is not None and judge is None:
            labels = remembered(generated, f"{embedding}|{label_identity()}", policy.cache)
        scored = [
            [
                *score_stage(done, references, table, scorers, labeller, labels or heuristic),
                *(blocked[p.id] for p in stage.probes if p.id in blocked),
            ]
            for done, stage in zip(generated, unguarded, strict=True)
        ]
        del table  # the vectors (about 5 KB a probe) are freed before the records are built
        if policy is not None and labels is not None and labels.fresh:
            policy.cache.put_labels({key: (found.label, found.reason) for key, found in labels.fresh.items()})
        texts = stored_texts(probes, mode != "off", memory)
    finally:
        if policy is not None:
            policy.cache.close()
        if store is not None:
            store.close()
    failure = backend.failure
    main, others = scored[0], scored[1:]
    sweep: dict[str, dict[str, ProbeResult]] = {}
    shuffled: list[ProbeResult] = []
    for done, results in zip(stages[1:], others, strict=True):
        if done.name.startswith("shuffle"):
            shuffled = results
        else:
            sweep[f"{done.generation.temperature:g}"] = {r.probe_id: r for r in results}
    checked = guarded[0]
    return _record(
        settings, loaded, probes, main, known, backend.identity, failure, sweep, shuffled, checked.counts,
        checked.conversations, mode != "off", texts,
    )  # fmt: skip


class Overlap:
    """Encodes beside generation once the backend has started and a prediction settles after that (the backend's
    first answer, or a later stage's cached one once its requests have run): an endpoint's requests leave the cores
    free, and an embedded model that reports its `cores` lets encoding fit around its prompts; any other local
    backend leaves the texts to be encoded after generation.

    Not sooner: opening a backend and sending its first request import the client's stack (openai, httpx, anyio's
    event-loop backend, the chat template's Jinja), and the encoder's import of sentence-transformers pulls in the
    same packages; two threads importing one package at once can find it half initialised (an xdist worker once
    failed on jinja2 that way). An LLM judge's backend opens once generation ends, while the encoder might still be
    importing, so a judged run encodes after generation and judging."""

    def __init__(self, vectors: TextVectors, judged: bool) -> None:
        self._vectors = vectors
        self._judged = judged
        self._backend: Backend | None = None
        self._begun = False

    def started(self, backend: Backend) -> None:
        self._backend = backend

    def arrived(self, prediction: str) -> None:
        self._vectors.add([prediction])
        backend = self._backend
        if self._begun or backend is None or self._judged:
            return
        self._begun = True
        cores = getattr(backend, "cores", None)
        if backend.remote:
            self._vectors.start()
        elif cores is not None:
            self._vectors.start(threads=1, cores=cores)


def pii_mode(settings: Settings, judged_as: BackendConfig | None = None) -> str:
    """How the PII guard treats this run's contexts: as configured where they leave the machine (an endpoint under
    test or an LLM judge's), or everywhere with --utg-pii-embedded; otherwise off."""
    config, judge = settings.model, settings.judge
    leaves = config.remote or (judge.llm and judge.backend(judged_as or config).remote)
    return settings.privacy.pii if leaves or settings.privacy.pii_embedded else "off"


def judge_label(config: BackendConfig) -> str:
    """How predictions labelled by an LLM judge say so (`labelled_by`)."""
    from utg_pytest.generate import without_credentials

    where = without_credentials(config.base_url) if config.base_url else "embedded"
    return f"llm:{where}#{config.model or ''}"


def content_fingerprint(probe: Probe) -> str:
    payload = json.dumps([[[m.role, m.text] for m in probe.context], probe.target], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    """What produced a run's scores, as its header records it."""

    backend: str
    backend_key: str
    embedding_model: str
    prompt_fingerprint: str
    labeller: str
    scorers: dict[str, str]


def _record(
    settings: Settings,
    loaded: Loaded,
    probes: Sequence[Probe],
    results: Sequence[ProbeResult],
    identity: Identity,
    served_by: str | None,
    failure: str | None,
    sweep: dict[str, dict[str, ProbeResult]] | None = None,
    shuffled: Sequence[ProbeResult] = (),
    pii: dict[str, int] | None = None,
    pii_conversations: int = 0,
    guarded: bool = False,
    texts: Mapping[str, tuple[tuple[Message, ...], str]] | None = None,
) -> RunRecord:
    """The run record; `texts` are `stored_texts(probes, guarded)`, when the caller has them already."""
    from utg_pytest import gates
    from utg_pytest.controls import SHUFFLED_SUFFIX
    from utg_pytest.record import ProbeRecord, RunHeader, RunRecord
    from utg_pytest.slicing import values_of

    by_id = {r.probe_id: r for r in results}
    perturbed = {r.probe_id.removesuffix(SHUFFLED_SUFFIX): r for r in shuffled}
    records: list[ProbeRecord] = []
    kept = texts if texts is not None else stored_texts(probes, guarded)
    for probe in probes:
        result = by_id[probe.id]
        thresholds = gates.probe_thresholds(probe, settings.gates)
        tail, target = kept[probe.id]
        passed = (
            not gates.probe_shortfalls(result, thresholds, settings.gates.min_probe_pass_rate) if result.ok else None
        )
        records.append(
            ProbeRecord(
                probe_id=probe.id,
                source=probe.source,
                line=probe.line,
                conversation_id=probe.conversation_id,
                turn=probe.turn,
                context_messages=len(probe.context),
                context_tail=tail,
                target=target,
                fingerprint=content_fingerprint(probe),
                thresholds=thresholds,
                result=result,
                passed=passed,
                sweep={t: found[probe.id] for t, found in (sweep or {}).items() if probe.id in found},
                shuffled=perturbed.get(probe.id),
                slices=values_of(probe, settings.slices.fields, guarded),
            )
        )
    header = RunHeader(
        utg_version=__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        settings=settings,
        backend=identity.backend,
        backend_key=identity.backend_key,
        served_by=served_by,
        embedding_model=identity.embedding_model,
        prompt_fingerprint=identity.prompt_fingerprint,
        labeller=identity.labeller,
        scorers=identity.scorers,
        logs=loaded.files,
        log_errors=loaded.errors,
        probes_in_logs=len(loaded.unsharded),
        probes_in_shard=len(loaded.probes),
        pii=pii or {},
        pii_conversations=pii_conversations,
        label_agreement=HEURISTIC_AGREEMENT if identity.labeller == HEURISTIC_LABELLER else None,
        conversations=sum(len(log.lines) for log in loaded.unsharded.logs),
        conversations_with_probes=loaded.unsharded.conversations_with_probes(),
    )
    return RunRecord(header, tuple(records), failure)


def stored_texts(
    probes: Sequence[Probe], guarded: bool, memory: ScanMemory | None = None
) -> dict[str, tuple[tuple[Message, ...], str]]:
    """Probe id -> the texts its record keeps (the end of its context, and its target): with the PII guard on,
    redacted, so that personal data found in the logs never reaches the results, the reports or a failure message.
    With a `memory`, texts a previous run found clean are not scanned again."""
    kept = [(*probe.context[-CONTEXT_KEPT:], Message("user", probe.target)) for probe in probes]
    if guarded:
        from utg_pytest.guard import redact_all

        kept = redact_all(kept, memory)
    return {probe.id: (texts[:-1], texts[-1].text) for probe, texts in zip(probes, kept, strict=True)}


def header_only(run: Run) -> RunHeader:
    """The header of a run that generated nothing (every probe deselected, or logs without probes)."""
    from utg_pytest.scoring.scorers import versions

    config = run.settings.model
    identity = Identity(run.factory.describe(config), "", "", "", HEURISTIC_LABELLER, versions(run.scorers))
    return _record(run.settings, run.loaded, (), (), identity, None, None).header


def plan(settings: Settings, loaded: Loaded, selected: Sequence[Probe]) -> list[tuple[int, int]]:
    """For --utg-dry-run: (estimated prompt tokens, max completion tokens) of each request a run would make to the
    model under test, sweep temperatures and the shuffle control included (LLM-judge calls are not). The cache is
    consulted, so hits are not counted; no model is loaded or called (the embedded model's own chat template is
    approximated by ChatML)."""
    from utg_pytest.cache import CACHE_FILE, GenerationCache
    from utg_pytest.cost import estimate_prompt_tokens
    from utg_pytest.generate import factory_for, planning_template, prompt_fingerprint
    from utg_pytest.generate.prompts import build_request
    from utg_pytest.runner import CachePolicy

    config = settings.model
    factory = factory_for(config)
    template = planning_template(factory, config)
    cache = None
    if settings.cache.mode in ("use", "replay") and (settings.cache_dir / CACHE_FILE).is_file():
        cache = GenerationCache(settings.cache_dir)
    try:
        policy: CachePolicy | None = None
        if cache is not None:
            identity = factory.identity(config, cache.digest)
            fingerprint = prompt_fingerprint(factory, config, settings.generation.prompt)
            policy = CachePolicy(cache, settings.cache.mode, identity, fingerprint)
        requests = []
        for _, probes, generation in _stages(settings, loaded, selected, selected):
            for probe in probes:
                request = build_request(probe, generation.prompt, template)
                for sample in range(generation.samples):
                    if policy is None or policy.read(policy.key(probe, generation, sample)) is None:
                        requests.append((estimate_prompt_tokens(request), generation.max_tokens))
        return requests
    finally:
        if cache is not None:
            cache.close()
