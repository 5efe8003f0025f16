"""Record/replay cache of generations in SQLite, so unchanged re-runs cost nothing and CI can run offline.

The key is a hash of everything that changes the answer: the backend's identity (endpoint and requested model, or the
GGUF file's content hash), the prompt strategy and its instructions, the probe's context, the sampling settings and
the sample index. It is computed without starting the backend, so a replay never loads a model or opens a
connection. No API key is part of a key or a value.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from utg_pytest.model import Generation, Probe

CACHE_FILE = "generations.sqlite3"
KEY_VERSION = 1
"""Bump when the meaning of a key changes, so old entries stop matching instead of answering wrongly."""


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def generation_key(
    identity: str, strategy: str, prompt_fingerprint: str, probe: Probe, sampling: dict[str, Any], sample: int = 0
) -> str:
    payload = {
        "version": KEY_VERSION,
        "backend": identity,
        "strategy": strategy,
        "prompt": prompt_fingerprint,
        "context": [[m.role, m.text] for m in probe.context],
        "sampling": sampling,
        "sample": sample,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class GenerationCache:
    """One SQLite file in WAL mode; every write commits at once, so a killed run keeps what it had generated."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / CACHE_FILE
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, prediction TEXT NOT NULL, "
            "generation TEXT NOT NULL, created REAL NOT NULL)"
        )

    def get(self, key: str) -> tuple[str, Generation] | None:
        row = self._db.execute("SELECT prediction, generation FROM generations WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return row[0], Generation(**json.loads(row[1]))

    def put(self, key: str, prediction: str, generation: Generation) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO generations (key, prediction, generation, created) VALUES (?, ?, ?, ?)",
            (key, prediction, json.dumps(asdict(generation)), time.time()),
        )

    def close(self) -> None:
        self._db.close()
