"""One utg run without pytest: load logs, build probes, generate and score the selected ones, judge the gates.

The pytest plugin drives this object; so can a script or a benchmark. Loading needs only the ingest modules; the
generation, scoring and gate modules are imported when their stage runs, so collecting a large log stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from utg_pytest import ingest
from utg_pytest.model import GateVerdict, LogError, Probe, ProbeResult
from utg_pytest.probes import build_probes
from utg_pytest.settings import Settings

if TYPE_CHECKING:
    from utg_pytest.controls import SweepRow
    from utg_pytest.runner import Progress


def display_name(path: Path, rootdir: Path) -> str:
    """How a log file is named in node ids and messages: relative to the rootdir when inside it."""
    try:
        return path.relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


class Suite:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.files: list[tuple[Path, str]] = []
        self.probes: Sequence[Probe] = ()
        self.errors: list[LogError] = []
        self._selected: list[Probe] | None = None
        """None until pytest selects: every probe."""
        self._results: dict[str, ProbeResult] = {}
        self._failure: str | None = None
        self._generated = False
        self._verdicts: list[GateVerdict] | None = None
        self.backend_identity: str | None = None
        self.sweep: dict[float, list[ProbeResult]] = {}
        """Results at each extra --utg-temperatures value."""
        self.perturbed: list[ProbeResult] = []
        """Results of the shuffle control's perturbed probes."""

    def load(self) -> None:
        rootdir = Path(self.settings.rootdir)
        paths = ingest.resolve_paths(self.settings.logs)
        names = {path: display_name(path, rootdir) for path in paths}
        loaded = ingest.load(paths, names)
        self.files = [(path, names[path]) for path in paths]
        self.errors = list(loaded.errors)
        self.probes = build_probes(
            loaded.logs,
            mode=self.settings.probe,
            max_probes=self.settings.max_probes,
            seed=self.settings.sample_seed,
            max_context_turns=self.settings.max_context_turns,
        )

    def probes_in(self, source: str) -> list[Probe]:
        return [p for p in self.probes if p.source == source]

    def errors_in(self, source: str) -> list[LogError]:
        return [e for e in self.errors if e.source == source]

    def select(self, probe_ids: Iterable[str]) -> None:
        """Restrict generation to the probes pytest will run (after -k, --deselect, --lf)."""
        wanted = set(probe_ids)
        self._selected = [p for p in self.probes if p.id in wanted]

    @property
    def selected(self) -> list[Probe]:
        if self._selected is None:
            self._selected = list(self.probes)
        return self._selected

    def ensure_results(self, progress: Progress | None = None) -> None:
        """Run the generation phase once, for all selected probes; a backend that cannot start fails every probe
        with the same message."""
        if self._generated:
            return
        self._generated = True
        if not self.selected:
            return
        from utg_pytest.cache import EmbeddingCache, GenerationCache
        from utg_pytest.controls import shuffle_probes
        from utg_pytest.generate import cache_fingerprint, cache_identity, describe, open_backend
        from utg_pytest.runner import CachePolicy, LazyBackend, run_probes
        from utg_pytest.scoring.embeddings import Embedder, TextVectors

        settings = self.settings
        embedder = Embedder(settings.embedding_model)
        policy = None
        store = None
        if settings.cache_mode != "off":
            stage = f"cache {settings.cache_dir} unusable"
            try:
                cache = GenerationCache(settings.cache_dir)
                stage = "model backend could not start"
                identity = cache_identity(settings, cache.digest)
                policy = CachePolicy(cache, settings.cache_mode, identity, cache_fingerprint(settings))
                stage = "embedding model unusable"
                digests = [cache.digest(path) for path in embedder.files()]
                store = EmbeddingCache(settings.cache_dir, "|".join([embedder.name, *digests]))
            except Exception as exc:  # an unusable model file or cache fails every probe with one message
                self._fail_all(f"{stage}: {type(exc).__name__}: {exc}")
                return

        def run(probes: list[Probe], run_settings: Settings, stage: str) -> list[ProbeResult]:
            backend = LazyBackend(lambda: open_backend(run_settings), remote=run_settings.base_url is not None)
            staged = (lambda status: progress(replace(status, stage=stage))) if progress else None
            found = run_probes(probes, backend, run_settings, TextVectors(embedder, store), staged, self.probes, policy)
            self._failure = self._failure or backend.failure
            self.backend_identity = self.backend_identity or backend.identity
            return found

        try:
            for result in run(self.selected, settings, "predictions"):
                self._results[result.probe_id] = result
            for temperature in settings.temperatures:
                if temperature != settings.temperature:
                    swept = replace(settings, temperature=temperature)
                    self.sweep[temperature] = run(self.selected, swept, f"predictions at temperature {temperature:g}")
            if settings.control == "shuffle":
                shuffled = shuffle_probes(self.selected, self.probes, settings.sample_seed, settings.control_probes)
                self.perturbed = run(shuffled, settings, "shuffle-control predictions")
        finally:
            if policy is not None:
                policy.cache.close()
            if store is not None:
                store.close()
        self.backend_identity = self.backend_identity or describe(settings)

    def sweep_rows(self) -> list[SweepRow]:
        """The temperature sweep, the run's own temperature included, in increasing temperature."""
        from utg_pytest.controls import sweep_row

        if not self.sweep:
            return []
        rows = {self.settings.temperature: self.results(), **self.sweep}
        return [sweep_row(t, rows[t]) for t in sorted(rows)]

    def plan(self) -> list[tuple[int, int]]:
        """For --utg-dry-run: (estimated prompt tokens, max completion tokens) of each request a run would make to
        the model under test, sweep temperatures and the shuffle control included (LLM-judge calls are not). The
        cache is consulted, so hits are not counted; no model is loaded or called (the embedded model's own chat
        template is approximated by ChatML)."""
        from utg_pytest.cache import CACHE_FILE, GenerationCache
        from utg_pytest.controls import shuffle_probes
        from utg_pytest.cost import estimate_prompt_tokens
        from utg_pytest.generate import cache_fingerprint, cache_identity, planning_template
        from utg_pytest.generate.prompts import build_request
        from utg_pytest.runner import CachePolicy

        settings = self.settings
        template = planning_template(settings)
        cache = None
        if settings.cache_mode in ("use", "replay") and (settings.cache_dir / CACHE_FILE).is_file():
            cache = GenerationCache(settings.cache_dir)
        try:
            policy = None
            if cache is not None:
                identity = cache_identity(settings, cache.digest)
                policy = CachePolicy(cache, settings.cache_mode, identity, cache_fingerprint(settings))
            runs = [(self.selected, settings)]
            runs += [(self.selected, replace(settings, temperature=t)) for t in settings.temperatures]
            if settings.control == "shuffle":
                shuffled = shuffle_probes(self.selected, self.probes, settings.sample_seed, settings.control_probes)
                runs.append((shuffled, settings))
            return [
                (estimate_prompt_tokens(build_request(probe, settings.prompt, template)), settings.max_tokens)
                for probes, run in runs
                if run is settings or run.temperature != settings.temperature
                for probe in probes
                for sample in range(settings.samples)
                if policy is None or policy.read(policy.key(probe, run, sample)) is None
            ]
        finally:
            if cache is not None:
                cache.close()

    def _fail_all(self, message: str) -> None:
        self._failure = message
        for probe in self.selected:
            self._results[probe.id] = ProbeResult(probe.id, None, None, {}, error=message, attempts=0)

    @property
    def failure(self) -> str | None:
        return self._failure

    def records(self) -> list[dict[str, Any]]:
        """Every selected probe that ran, as a results-file record."""
        from utg_pytest import gates
        from utg_pytest.controls import SHUFFLED_SUFFIX
        from utg_pytest.report import results as report_results

        swept = {t: {r.probe_id: r for r in results} for t, results in self.sweep.items()}
        shuffled = {r.probe_id.removesuffix(SHUFFLED_SUFFIX): r for r in self.perturbed}
        records = []
        for probe in self.selected:
            result = self._results.get(probe.id)
            if result is None:
                continue
            thresholds = self.thresholds(probe)
            passed = (
                not gates.probe_shortfalls(result, thresholds, self.settings.min_probe_pass_rate) if result.ok else None
            )
            sweep = {t: by_id[probe.id] for t, by_id in swept.items() if probe.id in by_id}
            records.append(
                report_results.record(
                    probe,
                    result,
                    thresholds,
                    passed,
                    self.settings,
                    self.backend_identity,
                    sweep,
                    shuffled.get(probe.id),
                )
            )
        return records

    def result(self, probe_id: str) -> ProbeResult | None:
        return self._results.get(probe_id)

    def results(self) -> list[ProbeResult]:
        return [self._results[p.id] for p in self.selected if p.id in self._results]

    def thresholds(self, probe: Probe) -> dict[str, float]:
        from utg_pytest import gates

        return gates.probe_thresholds(probe, self.settings)

    def verdicts(self) -> list[GateVerdict]:
        """Computed once, after generation: the results no longer change."""
        if self._verdicts is None:
            from utg_pytest import gates

            results = self.results()
            evidence = gates.Evidence(results, self.perturbed)
            self._verdicts = [
                gates.evaluate(gate, evidence, self.settings.gate_on) for gate in gates.run_gates(self.settings)
            ]
        return self._verdicts

    def verdict(self, name: str) -> GateVerdict:
        for verdict in self.verdicts():
            if verdict.name == name:
                return verdict
        raise KeyError(name)
