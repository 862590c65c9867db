"""A peer service for unit tests: a small HTTP server in a thread that answers as it is
told and records what it received, so clients are proven over a real socket."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator


@dataclass
class Received:
    """One request as the fake service saw it."""

    method: str
    path: str
    headers: Any
    body: bytes


@dataclass
class Answer:
    """What the fake service answers; `hang` means it stays silent until the test ends."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    raw: bytes | None = None  # sent as is instead of `body` as JSON


class FakeService(ThreadingHTTPServer):
    """A downstream that answers every request with `answer` and records it in `received`."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = Answer()
        self.script: list[Answer] = []  # answers to the first requests, before `answer`
        self.received: list[Received] = []
        self.released = threading.Event()

    @property
    def url(self) -> str:
        """Base URL of this service."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real services speak
    server: FakeService

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.received.append(
            Received(self.command, self.path, self.headers, self.rfile.read(length)))
        answer = self.server.script.pop(0) if self.server.script else self.server.answer
        if answer.hang:
            self.server.released.wait(10)
            self.close_connection = True
            return
        payload = (answer.raw if answer.raw is not None else
                   json.dumps(answer.body).encode() if answer.body is not None else b"")
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if payload and "Content-Type" not in answer.headers:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass


@contextmanager
def running_service() -> Iterator[FakeService]:
    """A FakeService serving on a thread until the block ends."""
    server = FakeService()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
