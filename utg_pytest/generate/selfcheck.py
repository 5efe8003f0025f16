"""`python -m utg_pytest.generate.selfcheck`: can this machine run the embedded model? Loads it and completes a short
prompt, in this process: a llama.cpp build that does not fit the CPU crashes here, not in a test run.

Exit status 0 when the model answered; a crash or an error exits non-zero (a missing `[embedded]` extra says so).
"""

from __future__ import annotations

import asyncio

from utg_pytest.generate import Sampling, factory_for
from utg_pytest.generate.prompts import Request
from utg_pytest.settings import BackendConfig


async def complete() -> str:
    config = BackendConfig(n_ctx=512)
    backend = await factory_for(config).open(config)
    try:
        generation, _ = await backend.generate(
            Request(prompt="The capital of France is", stops=("\n",)), Sampling(0.0, 8, 0)
        )
        return generation.text
    finally:
        await backend.aclose()


def main() -> int:
    text = asyncio.run(complete())
    print(f"embedded model OK: {text.strip()!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
