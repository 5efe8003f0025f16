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


OPEN_ATTEMPTS = 50
OPEN_PAUSE_S = 0.1


def _connect(path: Path) -> sqlite3.Connection:
    """Several processes may open one cache at once (pytest-xdist workers, CI jobs on a shared disk): switching a new
    file to WAL takes an exclusive lock for which SQLite does not always wait, so a busy answer is retried."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return _open(path)
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or attempt + 1 == OPEN_ATTEMPTS:
                raise
            time.sleep(OPEN_PAUSE_S)
    raise AssertionError("unreachable")


def _open(path: Path) -> sqlite3.Connection:
    # check_same_thread=False: the embedding worker thread owns its own connection but is created elsewhere.
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, prediction TEXT NOT NULL, "
            "generation TEXT NOT NULL, created REAL NOT NULL)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
            "mtime_ns INTEGER NOT NULL, digest TEXT NOT NULL)"
        )
    except BaseException:
        db.close()
        raise
    return db


class GenerationCache:
    """One SQLite file in WAL mode; every write commits at once, so a killed run keeps what it had generated."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / CACHE_FILE
        self._db = _connect(self.path)

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

    def digest(self, path: Path) -> str:
        """`file_digest`, remembered while the file's size and modification time stay the same: hashing a model of
        hundreds of megabytes on every run would cost more than a fully cached run."""
        stat = path.stat()
        resolved = str(path.resolve())
        row = self._db.execute(
            "SELECT digest FROM digests WHERE path = ? AND size = ? AND mtime_ns = ?",
            (resolved, stat.st_size, stat.st_mtime_ns),
        ).fetchone()
        if row is not None:
            return str(row[0])
        digest = file_digest(path)
        self._db.execute(
            "INSERT OR REPLACE INTO digests (path, size, mtime_ns, digest) VALUES (?, ?, ?, ?)",
            (resolved, stat.st_size, stat.st_mtime_ns, digest),
        )
        return digest

    def close(self) -> None:
        self._db.close()


class EmbeddingCache:
    """Unit vectors by (embedding model identity, text), stored as float32 bytes next to the generations."""

    LOOKUP_CHUNK = 500

    def __init__(self, directory: Path, model_identity: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._db = _connect(directory / CACHE_FILE)
        self._model = model_identity

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self._model}\0{text}".encode()).hexdigest()

    def get_many(self, texts: list[str]) -> dict[str, bytes]:
        keys = {self._key(text): text for text in texts}
        found: dict[str, bytes] = {}
        ordered = list(keys)
        for start in range(0, len(ordered), self.LOOKUP_CHUNK):
            chunk = ordered[start : start + self.LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, vector in self._db.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk):
                found[keys[key]] = vector
        return found

    def put_many(self, vectors: dict[str, bytes]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings (key, vector) VALUES (?, ?)",
                [(self._key(text), blob) for text, blob in vectors.items()],
            )

    def close(self) -> None:
        self._db.close()
