"""Embedding throughput of the scorer (TextVectors: dedup, batching, worker thread, cache writes) next to a bare
`model.encode` of the same texts, alternated and repeated in one process; best of the repeats.

    python benchmarks/scoring.py [--texts 3000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from synthetic import sentence

from utg_pytest.cache import EmbeddingCache
from utg_pytest.scoring.embeddings import Embedder, TextVectors, load_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(0)
    texts = list(dict.fromkeys(sentence(rng) for _ in range(args.texts)))
    embedder = Embedder()
    model = load_model(embedder.name)
    model.encode(["warm up"])
    timings: dict[str, list[float]] = {"bare": [], "scorer": [], "scorer + cache writes": []}
    for repeat in range(args.repeats):
        started = time.perf_counter()
        model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        timings["bare"].append(time.perf_counter() - started)

        started = time.perf_counter()
        TextVectors(embedder).add_all(texts)
        timings["scorer"].append(time.perf_counter() - started)

        with tempfile.TemporaryDirectory() as scratch:
            store = EmbeddingCache(Path(scratch), f"bench-{repeat}")
            started = time.perf_counter()
            vectors = TextVectors(embedder, store)
            vectors.start()
            vectors.add(texts)
            vectors.finish()
            timings["scorer + cache writes"].append(time.perf_counter() - started)
            store.close()
    bare = min(timings["bare"])
    print(f"scoring: {len(texts)} distinct texts, best of {args.repeats}")
    for name, values in timings.items():
        best = min(values)
        print(f"  {name:<22} {best:.2f} s  {len(texts) / best:.0f} texts/s  throughput vs bare {bare / best:.3f}")
    print("  target: scorer throughput >= 0.9 of bare")


if __name__ == "__main__":
    main()
