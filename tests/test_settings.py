from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from utg_pytest.settings import BY_NAME, EMBEDDED_DECODING, OPTIONS, Settings, SettingsError, build, resolve


def test_every_option_has_a_settings_field_and_an_ini_twin() -> None:
    for option in OPTIONS:
        group = getattr(Settings(), option.group)
        assert option.attribute in group.__dataclass_fields__, option
        assert option.cli == "--utg-" + option.name.replace("_", "-")
        assert option.ini == "utg_" + option.name


def test_settings_defaults_are_the_option_table_defaults() -> None:
    flat = Settings().flat()
    for option in OPTIONS:
        expected = () if option.many and option.default is None else option.default
        assert flat[option.name] == expected, option


def test_build_inverts_flat() -> None:
    settings = build({"min_similarity": 0.3, "judge_model": "j", "cache_mode": "off", "shard": (2, 3)})
    assert settings.gates.min_similarity == 0.3
    assert settings.judge.model == "j"
    assert settings.cache.mode == "off"
    assert build(settings.flat()) == settings


def test_the_judge_backend_is_its_own_endpoint_with_the_tested_models_limits() -> None:
    settings = build({"base_url": "http://tested/v1", "model": "m", "timeout": 5.0, "judge_base_url": "http://j/v1"})
    judge = settings.judge.backend(settings.model)
    assert (judge.base_url, judge.model, judge.timeout) == ("http://j/v1", None, 5.0)


def test_unknown_option_is_refused() -> None:
    with pytest.raises(SettingsError, match="unknown option"):
        build({"min_similarty": 0.3})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("temperature", "hot"),
        ("temperature", "2.5"),
        ("temperature", "nan"),
        ("max_tokens", "0"),
        ("max_probes", "1.5"),
        ("prompt", "chain-of-thought"),
        ("probe", "first"),
        ("min_similarity", "1.2"),
        ("strict", "maybe"),
        ("base_url", "  "),
        ("shard", "3/2"),
        ("shard", "0/2"),
        ("shard", "half"),
    ],
)
def test_bad_values_are_rejected(name: str, value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        BY_NAME[name].convert(value)


def test_command_line_beats_ini_beats_default(tmp_path: Path) -> None:
    cli = {"min_similarity": 0.5, "logs": None, "strict": None}
    ini = {"min_similarity": "0.3", "min_lexical": "0.2", "logs": ["a.jsonl"], "strict": "true"}
    settings = resolve(cli, ini, rootdir=tmp_path / "root", cwd=tmp_path / "cwd")
    assert settings.gates.min_similarity == 0.5
    assert settings.gates.min_lexical == 0.2
    assert settings.logs.strict is True
    assert settings.generation == replace(Settings().generation, **dict(EMBEDDED_DECODING))
    assert settings.logs.logs == (str(tmp_path / "root" / "a.jsonl"),)


def test_command_line_paths_are_relative_to_the_working_directory(tmp_path: Path) -> None:
    settings = resolve(
        {"logs": ["x.jsonl"], "results": "out/r.jsonl"}, {}, rootdir=tmp_path / "root", cwd=tmp_path / "cwd"
    )
    assert settings.logs.logs == (str(tmp_path / "cwd" / "x.jsonl"),)
    assert settings.output.results == str(tmp_path / "cwd" / "out" / "r.jsonl")


def test_bad_ini_value_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="utg_max_tokens = 'lots'"):
        resolve({}, {"max_tokens": "lots"}, rootdir=tmp_path, cwd=tmp_path)


def test_empty_ini_values_mean_unset(tmp_path: Path) -> None:
    settings = resolve({}, {o.name: ([] if o.many else "") for o in OPTIONS}, rootdir=tmp_path, cwd=tmp_path)
    embedded = replace(Settings().generation, **dict(EMBEDDED_DECODING))
    assert settings == Settings(rootdir=str(tmp_path), generation=embedded)
    assert not settings.enabled


def test_the_embedded_model_decodes_its_own_way_only_where_nothing_is_set() -> None:
    embedded = build({"logs": ["l.jsonl"]}).generation
    assert [getattr(embedded, name) for name, _ in EMBEDDED_DECODING] == [value for _, value in EMBEDDED_DECODING]
    assert build({"logs": ["l.jsonl"], "base_url": "http://h/v1"}).generation == Settings().generation
    chosen = build({"logs": ["l.jsonl"], "temperature": 0.3, "repeat_penalty": 1.0}).generation
    assert (chosen.temperature, chosen.repeat_penalty) == (0.3, 1.0)


def test_a_small_embedded_model_gets_one_thread_and_a_large_one_leaves_a_core_free() -> None:
    from utg_pytest.generate.embedded import default_threads

    assert default_threads(98 * 2**20, 2) == 1
    assert default_threads(98 * 2**20, 16) == 1
    assert default_threads(4 * 2**30, 8) == 7
    assert default_threads(4 * 2**30, 1) == 1
