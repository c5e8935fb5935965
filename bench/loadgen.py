"""A minimal HTTP/1.1 client over raw sockets: one blocking connection, and a closed-loop load generator.

Why not httpx: at a few hundred microseconds of client work per request, a general-purpose
client is a large share of what the benchmarks measure on a 2-core machine (and it competes
with the server for the CPU). Here a request is bytes built once; a response is read by its
``Content-Length`` (or chunks). The client's own CPU time per request is measured and
reported with every result, so what the client costs is known, not assumed.

The load generator is closed-loop: ``concurrency`` connections, each sending its next request
as soon as the previous response arrived; it stops after ``max_requests`` responses or
``max_seconds``, whichever comes first. Given several requests, each connection goes through
them in turn (connection ``i`` starting at the ``i``-th), and a ``check`` of each answer against
the request it answers counts the wrong ones: an answer meant for another request is caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .stats import Distribution

__all__ = ["HttpRequest", "HttpResponse", "LoadResult", "SyncConnection", "parse_head", "run_load"]


@dataclass(frozen=True)
class HttpRequest:
    """A request encoded once, sent many times."""

    method: str
    path: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def encode(self, host: str, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        if self.body or self.method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    @classmethod
    def json(cls, path: str, payload: Any) -> HttpRequest:
        return cls(
            "POST", path, json.dumps(payload, separators=(",", ":")).encode(), {"Content-Type": "application/json"}
        )

    @classmethod
    def get(cls, path: str) -> HttpRequest:
        return cls("GET", path)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and lower-cased headers of a response head (status line and header lines, no blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ConnectionError(f"not an HTTP response: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return int(parts[1]), headers


class SyncConnection:
    """One keep-alive connection, blocking: the lowest-overhead way to time a request at concurrency 1."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._buffer = sock, b""
        return sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SyncConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, request: HttpRequest | bytes) -> HttpResponse:
        data = request.encode(self.host, self.port) if isinstance(request, HttpRequest) else request
        for attempt in (0, 1):  # a keep-alive connection the server closed: reconnect once
            sock = self._sock or self._connect()
            try:
                sock.sendall(data)
                return self._read()
            except (ConnectionError, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _recv(self) -> bytes:
        assert self._sock is not None
        chunk = self._sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def _read(self) -> HttpResponse:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            self._buffer += self._recv()
        status, headers = parse_head(self._buffer[:end])
        self._buffer = self._buffer[end + 4 :]
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                while (eol := self._buffer.find(b"\r\n")) < 0:
                    self._buffer += self._recv()
                size = int(self._buffer[:eol].split(b";")[0], 16)
                while len(self._buffer) < eol + 2 + size + 2:
                    self._buffer += self._recv()
                body += self._buffer[eol + 2 : eol + 2 + size]
                self._buffer = self._buffer[eol + 2 + size + 2 :]
                if size == 0:
                    return HttpResponse(status, headers, bytes(body))
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            self._buffer += self._recv()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return HttpResponse(status, headers, body)


@dataclass
class LoadResult:
    """What a closed-loop run measured: per-request latencies of successes, failures by status."""

    concurrency: int
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    checked: int = 0  # answers compared with what their request should get
    wrong: int = 0  # of those, the ones that did not match

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def lost(self) -> int:
        """Requests without a successful answer: another status, or the connection failed."""
        return sum(n for status, n in self.statuses.items() if status != 200) + len(self.errors)

    @property
    def throughput(self) -> float:
        """Successful responses per second."""
        return self.ok / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def latency(self) -> Distribution:
        return Distribution.of(self.latencies)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status, headers = parse_head(head[:-4])
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                return status, headers, bytes(body[:-2])
            del body[-2:]
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _open_connections(host: str, port: int, count: int) -> list[_Connection]:
    connections = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connections.append((reader, writer))
    return connections


async def _close_connections(connections: list[_Connection]) -> None:
    # Close them all first, then wait: one slow close must not hold the others open.
    for _, writer in connections:
        writer.close()
    for _, writer in connections:
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def _warm_up(connections: list[_Connection], data: Sequence[bytes], requests: int) -> None:
    """``requests`` (rounded up to a multiple of the connections) sent and read, not counted."""
    per_connection = -(-requests // len(connections))

    async def warm(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in range(per_connection):
            writer.write(data[n % len(data)])
            await _read_response(reader)

    await asyncio.gather(*(warm(r, w) for r, w in connections))


Check = Callable[[int, bytes], bool]  # (index of the request, body of its answer) -> the right answer?


async def _closed_loop(
    connections: list[_Connection],
    data: Sequence[bytes],
    result: LoadResult,
    limits: tuple[int, float],
    ok_status: int,
    check: Check | None,
) -> None:
    """Each connection sends its next request as soon as its response arrived, until either limit."""
    max_requests, deadline = limits
    issued = 0

    async def worker(first: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal issued
        index = first
        while issued < max_requests and time.perf_counter() < deadline:
            issued += 1
            index = (index + 1) % len(data)
            sent = time.perf_counter()
            writer.write(data[index])
            try:
                status, _, body = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                result.errors.append(f"{type(exc).__name__}: {exc}")
                return
            elapsed = time.perf_counter() - sent
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status == ok_status:
                result.latencies.append(elapsed)
                if check is not None:
                    result.checked += 1
                    result.wrong += not check(index, body)

    await asyncio.gather(*(worker(i, r, w) for i, (r, w) in enumerate(connections)))


async def run_load(
    host: str,
    port: int,
    request: HttpRequest | Sequence[HttpRequest],
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    warmup_requests: int = 0,
    ok_status: int = 200,
    check: Check | None = None,
) -> LoadResult:
    """Closed-loop load: ``concurrency`` connections send ``request`` (or go through several) until
    ``max_requests`` are done; ``check`` tells each answer right or wrong for the request it answers.

    ``warmup_requests`` (spread over the connections) go first and are not counted: they open
    the connections and fill the server's pipelines.
    """
    requests = [request] if isinstance(request, HttpRequest) else list(request)
    data = [r.encode(host, port) for r in requests]
    result = LoadResult(concurrency)
    connections = await _open_connections(host, port, concurrency)
    try:
        if warmup_requests:
            await _warm_up(connections, data, warmup_requests)
        cpu0, start = time.process_time(), time.perf_counter()
        await _closed_loop(connections, data, result, (max_requests, start + max_seconds), ok_status, check)
        result.wall_s = time.perf_counter() - start
        result.client_cpu_s = time.process_time() - cpu0
    finally:
        await _close_connections(connections)
    return result
