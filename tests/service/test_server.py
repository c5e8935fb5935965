"""service.process.server: the writes of one event-loop turn reach the socket as one, in order, nothing held back."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from service.process.server import FLUSH_BYTES, CoalescingHttpToolsProtocol, CoalescingTransport, uvicorn_config
from service.settings import Settings


class RecordingTransport(asyncio.Transport):
    """What reached the transport, one entry per ``write`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


def test_writes_of_one_turn_are_joined_and_sent_at_its_end() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], list[bytes]]:
        raw = RecordingTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"")
        transport.write(b"{}")
        during = list(raw.writes)
        assert transport.get_write_buffer_size() == 40
        await asyncio.sleep(0)
        after_turn = list(raw.writes)
        transport.write(b"next")
        await asyncio.sleep(0)
        return during, after_turn, raw.writes

    during, after_turn, writes = asyncio.run(scenario())
    assert during == [], "nothing is written within the turn"
    assert after_turn == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"], "one write: head and body"
    assert writes[1:] == [b"next"]


def test_large_writes_go_at_once_and_close_sends_what_is_held_first() -> None:
    async def scenario() -> RecordingTransport:
        raw = RecordingTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())
        transport.write(b"a" * 10)
        transport.write(b"b" * FLUSH_BYTES)
        assert raw.writes == [b"a" * 10 + b"b" * FLUSH_BYTES], "a large body is not held"
        transport.write(b"last")
        transport.close()
        assert raw.writes[-1] == b"last" and raw.closed
        await asyncio.sleep(0)  # the flush scheduled for the turn finds nothing left
        return raw

    raw = asyncio.run(scenario())
    assert len(raw.writes) == 2


def test_abort_drops_what_is_held_and_other_calls_reach_the_transport() -> None:
    async def scenario() -> RecordingTransport:
        raw = RecordingTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())
        assert transport.get_extra_info("peername") == ("127.0.0.1", 5)
        transport.write(b"partial")
        transport.abort()
        await asyncio.sleep(0)
        return raw

    raw = asyncio.run(scenario())
    assert raw.aborted and raw.writes == []


@pytest.mark.slow
def test_a_real_server_answers_through_it(tmp_path) -> None:
    """uvicorn with the service's configuration: keep-alive requests answered whole, in order."""
    from uvicorn import Server

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn_config(app, Settings(repository=tmp_path), lifespan="off", log_level="warning")
    assert config.http is CoalescingHttpToolsProtocol
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = Server(config)

    async def scenario() -> list[str]:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            texts = [(await client.get(f"/{n}")).text for n in range(20)]
        server.should_exit = True
        await serving
        return texts

    assert asyncio.run(scenario()) == [f"/{n}" for n in range(20)]
