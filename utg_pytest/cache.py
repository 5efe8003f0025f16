"""Record/replay cache of generations in SQLite, so unchanged re-runs cost nothing and CI can run offline.

The key is a hash of everything that changes the answer: the backend's identity (endpoint and requested model, or the
GGUF file's content hash), the prompt strategy and its instructions, the probe's context, the sampling settings and
the sample index. It is computed without starting the backend, so a replay never loads a model or opens a
connection. No API key is part of a key or a value. The same file keeps embeddings (`EmbeddingCache`) and heuristic
labels (`GenerationCache.labels`), so a replay neither encodes nor classifies again, and the digests of the
conversations the PII scanner found clean (`GenerationCache.clean`), so a replay does not scan them again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
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
            "CREATE TABLE IF NOT EXISTS labels (key TEXT PRIMARY KEY, label TEXT NOT NULL, reason TEXT NOT NULL)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS clean (key TEXT PRIMARY KEY)")
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

    def labels(self, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(label, reason) of each key a previous run labelled (see `scoring.labels.cache_key`)."""
        return {key: (label, reason) for key, label, reason in _rows_of(self._db, "key, label, reason", "labels", keys)}

    def put_labels(self, labels: dict[str, tuple[str, str]]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO labels (key, label, reason) VALUES (?, ?, ?)",
                [(key, label, reason) for key, (label, reason) in labels.items()],
            )

    def clean(self, keys: Sequence[str]) -> set[str]:
        """Those of `keys` (see `guard.scan_key`) a previous run's PII scan found nothing in."""
        return {key for (key,) in _rows_of(self._db, "key", "clean", keys)}

    def put_clean(self, keys: Sequence[str]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO clean (key) VALUES (?)", [(key,) for key in keys])

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


LOOKUP_CHUNK = 500
"""Keys per query: SQLite bounds the parameters of one statement."""


def _rows_of(db: sqlite3.Connection, columns: str, table: str, keys: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """The rows of `table` whose key is one of `keys`, a chunk of keys per query."""
    ordered = list(keys)
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start : start + LOOKUP_CHUNK]
        yield from db.execute(f"SELECT {columns} FROM {table} WHERE key IN ({','.join('?' * len(chunk))})", chunk)


class EmbeddingCache:
    """Unit vectors by (embedding model identity, text), stored as float32 bytes next to the generations."""

    def __init__(self, directory: Path, model_identity: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._db = _connect(directory / CACHE_FILE)
        self._model = model_identity

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self._model}\0{text}".encode()).hexdigest()

    def get_many(self, texts: list[str]) -> dict[str, bytes]:
        keys = {self._key(text): text for text in texts}
        return {keys[key]: vector for key, vector in _rows_of(self._db, "key, vector", "embeddings", list(keys))}

    def put_many(self, vectors: dict[str, bytes]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings (key, vector) VALUES (?, ?)",
                [(self._key(text), blob) for text, blob in vectors.items()],
            )

    def close(self) -> None:
        self._db.close()


GENERATION_TYPES: dict[str, tuple[type, ...]] = {
    "text": (str,),
    "prompt_tokens": (int,),
    "completion_tokens": (int,),
    "finish_reason": (str, type(None)),
}
"""The fields of a stored Generation and the JSON types each may hold."""
SHOWN_PROBLEMS = 20
"""Bad rows named one by one in a check's report; the rest are counted."""


@dataclass(frozen=True)
class CacheCheck:
    """What `check` found in a cache file: its rows of each kind, and every problem (none: the cache is sound)."""

    path: Path
    generations: int = 0
    embeddings: int = 0
    digests: int = 0
    problems: tuple[str, ...] = ()
    labels: int = 0
    clean: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def cache_file(path: Path) -> Path:
    """A cache directory (--utg-cache) stands for its SQLite file."""
    return path / CACHE_FILE if path.is_dir() else path


def _is_key(key: object) -> bool:
    """Whether a row's key is what every key of this cache is: a SHA-256 hex digest."""
    return isinstance(key, str) and len(key) == 64 and not key.strip("0123456789abcdef")


def _generation_problem(key: object, prediction: object, generation: object, created: object) -> str | None:
    """Why a row of the generations table could not answer a probe, or None when `GenerationCache.get` can use it."""
    if not _is_key(key):
        return "key is not a SHA-256 hex digest"
    if not isinstance(prediction, str):
        return "prediction is not text"
    if not isinstance(created, (int, float)):
        return "created is not a time"
    try:
        value = json.loads(generation) if isinstance(generation, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict) or "text" not in value or not set(value) <= set(GENERATION_TYPES):
        return "generation is not a JSON object of Generation's fields"
    wrong = sorted(k for k, v in value.items() if isinstance(v, bool) or not isinstance(v, GENERATION_TYPES[k]))
    return f"generation field(s) of the wrong type: {', '.join(wrong)}" if wrong else None


def _row_problems(db: sqlite3.Connection, tables: set[str], counts: dict[str, int]) -> list[str]:
    bad: list[str] = []
    if "generations" in tables:
        for key, prediction, generation, created in db.execute(
            "SELECT key, prediction, generation, created FROM generations"
        ):
            counts["generations"] += 1
            why = _generation_problem(key, prediction, generation, created)
            if why is not None:
                bad.append(f"generation {key!r}: {why}")
    if "embeddings" in tables:
        for key, vector in db.execute("SELECT key, vector FROM embeddings"):
            counts["embeddings"] += 1
            if not isinstance(vector, bytes) or not vector or len(vector) % 4:
                bad.append(f"embedding {key!r}: vector is not float32 bytes")
    if "labels" in tables:
        for key, label, reason in db.execute("SELECT key, label, reason FROM labels"):
            counts["labels"] += 1
            if not _is_key(key):
                bad.append(f"label {key!r}: key is not a SHA-256 hex digest")
            elif not isinstance(label, str) or not label or not isinstance(reason, str):
                bad.append(f"label {key!r}: not a label and a reason")
    if "clean" in tables:
        for (key,) in db.execute("SELECT key FROM clean"):
            counts["clean"] += 1
            if not _is_key(key):
                bad.append(f"clean conversation {key!r}: key is not a SHA-256 hex digest")
    if "digests" in tables:
        for digest_path, size, mtime_ns, digest in db.execute("SELECT path, size, mtime_ns, digest FROM digests"):
            counts["digests"] += 1
            sound = (
                isinstance(size, int) and isinstance(mtime_ns, int) and isinstance(digest, str) and len(digest) == 64
            )
            if not sound:
                bad.append(f"digest of {digest_path!r}: not a size, a time and a SHA-256 hex digest")
    if len(bad) > SHOWN_PROBLEMS:
        bad[SHOWN_PROBLEMS:] = [f"... and {len(bad) - SHOWN_PROBLEMS} more bad row(s)"]
    return bad


def check(path: Path) -> CacheCheck:
    """Whether a cache can be trusted after a crash or a kill: SQLite's integrity check of the file (with its
    write-ahead log, which opening replays, as a run's opening would), the tables a run expects, and every row
    decoding to what a run reads back (a generation, a float32 vector, a label, a file digest). Writes no row; a
    missing file is an error, not an empty cache. A cache written before labels (or clean conversations) were kept
    has no such table; the next run creates it, so its absence is no problem."""
    file = cache_file(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no cache file")
    counts = {"generations": 0, "embeddings": 0, "digests": 0, "labels": 0, "clean": 0}
    problems: list[str] = []
    db = sqlite3.connect(f"{file.resolve().as_uri()}?mode=rw", uri=True, timeout=30.0)
    try:
        problems += [f"sqlite integrity_check: {row[0]}" for row in db.execute("PRAGMA integrity_check")]
        if problems == ["sqlite integrity_check: ok"]:
            problems = []
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        problems += [f"table {name} missing" for name in sorted({"generations", "embeddings", "digests"} - tables)]
        problems += _row_problems(db, tables, counts)
    except sqlite3.DatabaseError as exc:
        problems.append(f"not a readable SQLite cache: {exc}")
    finally:
        db.close()
    return CacheCheck(file, problems=tuple(problems), **counts)
