"""A run record reads back equal to what was written, and a reader refuses what it cannot read."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from test_drift import arm

from utg_pytest import record as record_module
from utg_pytest.model import LogError, ProbeResult


def test_a_record_reads_back_equal_to_what_was_written(tmp_path: Path) -> None:
    written = arm([0.1, 0.5, 0.9], ["genuine_followup", "degenerate", "closing"])
    sample = ProbeResult("s", "p", "p", {"semantic": 0.2, "lexical": 0.1}, label="closing")
    probes = (replace(written.probes[0], result=replace(written.probes[0].result, samples=(sample, sample))),)
    header = replace(written.header, log_errors=(LogError("logs.jsonl", 4, "/id", "bad", "r1", "row", 0),))
    written = record_module.RunRecord(header, probes + written.probes[1:], "a failure")
    path = tmp_path / "run.jsonl"
    record_module.write(path, written)
    read = record_module.read(path)
    assert read == written
    assert read.verdicts == written.verdicts


def test_a_newer_format_and_an_old_results_file_are_refused(tmp_path: Path) -> None:
    lines = record_module.dumps(arm([0.3])).splitlines()
    newer = json.loads(lines[0]) | {"format": record_module.FORMAT + 1}
    path = tmp_path / "new.jsonl"
    path.write_text(json.dumps(newer) + "\n" + lines[1] + "\n", encoding="utf-8")
    with pytest.raises(record_module.RecordError, match="is newer than this utg-pytest"):
        record_module.read(path)
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"schema_version": 1, "probe_id": "a::b::turn2"}) + "\n", encoding="utf-8")
    with pytest.raises(record_module.RecordError, match="not a utg run record"):
        record_module.read(old)


def test_a_gz_record_is_compressed_reads_back_equal_and_a_damaged_one_is_refused(tmp_path: Path) -> None:
    found = arm([0.1 * (i % 7) for i in range(300)])
    plain, packed = tmp_path / "r.jsonl", tmp_path / "r.jsonl.gz"
    record_module.write(plain, found)
    record_module.write(packed, found)
    assert packed.stat().st_size < plain.stat().st_size / 4
    assert record_module.read(packed) == found
    packed.write_bytes(packed.read_bytes()[:100])
    with pytest.raises(record_module.RecordError, match="damaged gzip"):
        record_module.read(packed)
