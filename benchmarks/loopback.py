"""A loopback OpenAI-compatible server for timing benchmarks: real HTTP/1.1 with keep-alive, every generation
answered after a fixed delay. It runs in its own process so its CPU does not share the client's interpreter.

    python benchmarks/loopback.py --delay 0.1     # prints the port it listens on, then serves until killed

It answers `/v1/chat/completions` and `/v1/completions` with a short user turn that varies with the request, and
`/v1/models` with one model. It is scripted on purpose: generation quality is tested against real llama.cpp servers.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json

REPLIES = (
    "ok but which one is cheaper",
    "that did not work, I still get the same error",
    "can you explain the second step again",
    "yes, the blue one please",
    "thanks, and how long does shipping take",
)


def _body(path: str, number: int) -> bytes:
    text = f"{REPLIES[number % len(REPLIES)]} ({number})"
    usage = {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}
    if path.endswith("/models"):
        return json.dumps({"object": "list", "data": [{"id": "bench", "object": "model", "owned_by": "me"}]}).encode()
    if path.endswith("/chat/completions"):
        choice: dict[str, object] = {"index": 0, "message": {"role": "assistant", "content": text}}
    else:
        choice = {"index": 0, "text": text}
    choice["finish_reason"] = "stop"
    return json.dumps(
        {"id": "x", "object": "x", "created": 0, "model": "bench", "choices": [choice], "usage": usage}
    ).encode()


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, counter: itertools.count[int]
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if length:
                await reader.readexactly(length)
            if method == "POST":
                await asyncio.sleep(delay)
            payload = _body(path, next(counter))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(delay: float, port: int) -> None:
    counter = itertools.count()
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(r, w, delay, counter), "127.0.0.1", port, backlog=1024
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.delay, args.port))
