from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from utg_pytest.settings import OPTIONS, Settings, SettingsError, resolve

BY_NAME = {o.name: o for o in OPTIONS}


def test_every_option_has_a_settings_field_and_an_ini_twin() -> None:
    fields = set(Settings.__dataclass_fields__)
    for option in OPTIONS:
        assert option.name in fields
        assert option.cli == "--utg-" + option.name.replace("_", "-")
        assert option.ini == "utg_" + option.name


def test_defaults_match_settings_defaults() -> None:
    defaults = Settings()
    for option in OPTIONS:
        if not option.many:
            assert getattr(defaults, option.name) == (option.default if option.default is not None else None), option


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
    ],
)
def test_bad_values_are_rejected(name: str, value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        BY_NAME[name].convert(value)


def test_command_line_beats_ini_beats_default(tmp_path: Path) -> None:
    cli = {"min_similarity": 0.5, "logs": None, "strict": None}
    ini = {"min_similarity": "0.3", "min_lexical": "0.2", "logs": ["a.jsonl"], "strict": "true"}
    settings = resolve(cli, ini, rootdir=tmp_path / "root", cwd=tmp_path / "cwd")
    assert settings.min_similarity == 0.5
    assert settings.min_lexical == 0.2
    assert settings.strict is True
    assert settings.temperature == Settings().temperature
    assert settings.logs == (str(tmp_path / "root" / "a.jsonl"),)


def test_command_line_paths_are_relative_to_the_working_directory(tmp_path: Path) -> None:
    settings = resolve(
        {"logs": ["x.jsonl"], "results": "out/r.jsonl"}, {}, rootdir=tmp_path / "root", cwd=tmp_path / "cwd"
    )
    assert settings.logs == (str(tmp_path / "cwd" / "x.jsonl"),)
    assert settings.results == str(tmp_path / "cwd" / "out" / "r.jsonl")


def test_bad_ini_value_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="utg_max_tokens = 'lots'"):
        resolve({}, {"max_tokens": "lots"}, rootdir=tmp_path, cwd=tmp_path)


def test_empty_ini_values_mean_unset(tmp_path: Path) -> None:
    settings = resolve({}, {o.name: ([] if o.many else "") for o in OPTIONS}, rootdir=tmp_path, cwd=tmp_path)
    assert settings == Settings(rootdir=str(tmp_path))
    assert not settings.enabled
