"""The process that POSTs callbacks for ``gateway.callbacks.poster``: ``python -m
gateway.callbacks.poster_process TIMEOUT``. Requests arrive framed on stdin as ``(id, url, body,
headers)``; each answer goes back framed on stdout as ``(id, status or None, what went wrong or None)``,
in the order the POSTs end. It ends when stdin does (its gateway closed it, or is gone).
"""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp

from gateway.store.sqlite.write_process import FrameReader, frame

__all__ = ["USER_AGENT", "main"]

USER_AGENT = "SmsEdge-Callbacks/1"


async def _post(
    session: aiohttp.ClientSession, limit: float, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int | None, str | None]:
    """The receiver's status, or None and what went wrong (never a secret, never the body)."""
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as answer:
            return answer.status, None
    except TimeoutError:
        return None, f"no answer within {limit:g} s"
    except Exception as exc:  # aiohttp.ClientError, or a URL or header it refuses: never unanswered
        return None, f"not reached: {type(exc).__name__}"


async def _serve(limit: float) -> None:
    loop = asyncio.get_running_loop()
    requests = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(requests), sys.stdin.buffer)
    answers, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout.buffer)
    posting: set[asyncio.Task[None]] = set()

    async def post(
        session: aiohttp.ClientSession, request_id: int, url: str, body: bytes, headers: dict[str, str]
    ) -> None:
        status, error = await _post(session, limit, url, body, headers)
        answers.write(frame((request_id, status, error)))

    client_timeout = aiohttp.ClientTimeout(total=limit)
    async with aiohttp.ClientSession(timeout=client_timeout, headers={"User-Agent": USER_AGENT}) as session:
        frames = FrameReader()
        while data := await requests.read(1 << 16):
            for request_id, url, body, headers in frames.feed(data):
                task = asyncio.create_task(post(session, request_id, url, body, headers))
                posting.add(task)
                task.add_done_callback(posting.discard)
        for task in posting:  # the gateway is gone or stopping: nobody waits for these
            task.cancel()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # its gateway decides when it ends
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms uvloop does not build on
        asyncio.run(_serve(float(argv[0])))
    else:
        uvloop.run(_serve(float(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
