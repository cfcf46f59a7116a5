"""Shared pieces of the interop tests: payloads, a framewire echo handler, deflate cases, Node.

Every peer process is started here with asyncio's subprocess API (the framewire side runs in the
same event loop), and stopped here by its own PID with a timeout: nothing outlives its test.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framewire.aio.ws.websocket import WebSocket

INTEROP_DIR = Path(__file__).parent
NODE_SCRIPTS = INTEROP_DIR / "node"
NODE_WS = INTEROP_DIR / "node_modules" / "ws"
TIMEOUT = 30.0
"""Seconds any one interop scenario may take before it fails."""

KIB = 1024
MIB = 1024 * 1024
MAX_MESSAGE_SIZE = 4 * MIB
"""Limit set on both sides, above the largest message the tests send (1 MiB)."""

_TEXT_UNIT = "héllo wörld, framewire ⇄ ws € "


# -- payloads -------------------------------------------------------------------------------------


def make_payload(kind: str, size: int) -> str | bytes:
    """Return a text message of ``size`` UTF-8 bytes, or ``size`` bytes of runs mixed with noise."""
    if kind == "text":
        unit = _TEXT_UNIT.encode()
        data = (unit * (size // len(unit) + 1))[:size]
        # Cut back to a character boundary, then pad with ASCII to the exact size.
        text = data.decode("utf-8", errors="ignore")
        return text + "." * (size - len(text.encode()))
    pattern = bytes(range(256))
    noise = bytes((index * 2654435761 >> 13) & 0xFF for index in range(256))
    block = pattern + noise
    return (block * (size // len(block) + 1))[:size]


def split_payload(payload: str | bytes, count: int) -> list[str] | list[bytes]:
    """Split ``payload`` into ``count`` pieces (some possibly empty)."""
    step = max(1, -(-len(payload) // count))
    return [payload[index * step : (index + 1) * step] for index in range(count)]  # type: ignore[return-value]


@dataclass(frozen=True)
class Message:
    """One message a test sends and expects echoed: kind "text" or "binary"."""

    kind: str
    size: int
    fragments: int = 1

    @property
    def label(self) -> str:
        """A short name for test ids."""
        return f"{self.kind}-{self.size}B-{self.fragments}f"

    def node_step(self) -> dict[str, Any]:
        """Return the step for node/client.js."""
        return {"type": self.kind, "size": self.size, "fragments": self.fragments}


FULL_MATRIX = [
    Message(kind, size, fragments)
    for size in (0, 1, 64 * KIB, MIB)
    for kind in ("text", "binary")
    for fragments in (1, 4)
]
"""Every size, type and framing that issue 4 asks for: 16 messages."""

SMALL_MATRIX = [
    Message("text", 0),
    Message("binary", 1),
    Message("text", 64 * KIB, 4),
    Message("binary", 64 * KIB),
    Message("text", 1, 3),
]
"""A cheaper subset for the many parameter combinations."""

BASIC_MESSAGES = [
    Message("text", 5),
    Message("binary", 2),
    Message("binary", MIB),
    Message("text", MIB, 8),
]
"""Issue 3: text, binary and 1 MiB (also fragmented)."""


# -- the framewire side ---------------------------------------------------------------------------


@dataclass
class ServerRecord:
    """What framewire's echo handler saw on one connection."""

    deflate: bool = False
    response_extensions: str | None = None
    close_code: int | None = None
    close_reason: str | None = None
    messages: int = 0


@dataclass
class EchoRecorder:
    """framewire echo handler that records each connection; "!close CODE REASON" closes."""

    records: list[ServerRecord] = field(default_factory=list)

    async def __call__(self, ws: WebSocket) -> None:
        """Echo messages until the peer closes, or close when asked to."""
        record = ServerRecord(deflate=ws.connection.deflate is not None)
        if ws.response_headers is not None:
            record.response_extensions = ws.response_headers.get("Sec-WebSocket-Extensions")
        self.records.append(record)
        try:
            async for message in ws:
                record.messages += 1
                if isinstance(message, str) and message.startswith("!close "):
                    code, _, reason = message[len("!close ") :].partition(" ")
                    await ws.close(int(code), reason)
                    break
                await ws.send(message)
        finally:
            await ws.wait_closed()
            record.close_code, record.close_reason = ws.close_code, ws.close_reason


# -- permessage-deflate parameter cases -----------------------------------------------------------

SNCT = "server_no_context_takeover"
CNCT = "client_no_context_takeover"
SMWB = "server_max_window_bits"
CMWB = "client_max_window_bits"


@dataclass(frozen=True)
class DeflateCase:
    """One negotiation: what the client offers, what the server is configured with.

    ``offer`` and ``accept`` map parameter names to True (a flag) or a window size; a missing
    client_max_window_bits in ``offer`` means "offered without a value" (every library's default).
    ``expect`` lists what the server's Sec-WebSocket-Extensions answer must contain.
    """

    name: str
    offer: dict[str, bool | int] = field(default_factory=dict)
    accept: dict[str, bool | int] = field(default_factory=dict)
    expect: tuple[str, ...] = ()
    full: bool = False


DEFLATE_CASES = [
    DeflateCase("default", full=True),
    DeflateCase("snct-offered", {SNCT: True}, expect=(SNCT,)),
    DeflateCase("snct-by-server", accept={SNCT: True}, expect=(SNCT,)),
    DeflateCase("cnct-offered", {CNCT: True}, expect=(CNCT,)),
    DeflateCase("cnct-by-server", accept={CNCT: True}, expect=(CNCT,)),
    DeflateCase("both-offered", {SNCT: True, CNCT: True}, expect=(SNCT, CNCT), full=True),
    DeflateCase("both-by-server", accept={SNCT: True, CNCT: True}, expect=(SNCT, CNCT)),
    # Full matrix for 8: the peer inflates with a 256-byte window while framewire deflates
    # with zlib's 9-bit compressor (see sansio/deflate_negotiation.py).
    DeflateCase("smwb8-offered", {SMWB: 8}, expect=(f"{SMWB}=8",), full=True),
    *(
        DeflateCase(f"smwb{bits}-offered", {SMWB: bits}, expect=(f"{SMWB}={bits}",))
        for bits in (9, 10, 15)
    ),
    *(
        DeflateCase(f"smwb{bits}-by-server", accept={SMWB: bits}, expect=(f"{SMWB}={bits}",))
        for bits in (8, 9, 10, 15)
    ),
    *(DeflateCase(f"cmwb{bits}-offered", {CMWB: bits}) for bits in (9, 15)),
    *(
        DeflateCase(f"cmwb{bits}-by-server", accept={CMWB: bits}, expect=(f"{CMWB}={bits}",))
        for bits in (8, 9, 15)
    ),
    DeflateCase(
        "all-small-windows",
        {SNCT: True, CNCT: True, SMWB: 9, CMWB: 9},
        expect=(SNCT, CNCT, f"{SMWB}=9"),
        full=True,
    ),
    DeflateCase(
        "windows-8-with-takeover",
        {SMWB: 8},
        {CMWB: 8},
        expect=(f"{SMWB}=8", f"{CMWB}=8"),
        full=True,
    ),
]


def assert_extensions(header: str | None, case: DeflateCase) -> None:
    """Assert that a Sec-WebSocket-Extensions answer accepted permessage-deflate as expected."""
    assert header is not None, "permessage-deflate was not negotiated"
    tokens = [token.strip() for token in header.split(";")]
    assert tokens[0] == "permessage-deflate", header
    for expected in case.expect:
        assert expected in tokens, f"{expected!r} missing from {header!r}"


def node_deflate_options(params: dict[str, bool | int]) -> dict[str, bool | int]:
    """Translate a case's parameters into ws's perMessageDeflate option names."""
    names = {
        SNCT: "serverNoContextTakeover",
        CNCT: "clientNoContextTakeover",
        SMWB: "serverMaxWindowBits",
        CMWB: "clientMaxWindowBits",
    }
    return {names[name]: value for name, value in params.items()}


# -- Node ------------------------------------------------------------------------------------------


def node_skip_reason() -> str | None:
    """Return why the Node tests cannot run here, or None when they can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_WS / "package.json").is_file():
        return "Node ws is not installed: run `npm ci --prefix tests/interop`"
    return None


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Stop a process we started: close its stdin, then kill it by PID if it lingers."""
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()
    try:
        await asyncio.wait_for(process.wait(), 5)
    except TimeoutError:
        process.kill()
        await asyncio.wait_for(process.wait(), 5)


async def run_node_client(config: dict[str, Any]) -> dict[str, Any]:
    """Run node/client.js with ``config`` and return the JSON result it prints."""
    process = await asyncio.create_subprocess_exec(
        "node",
        str(NODE_SCRIPTS / "client.js"),
        json.dumps(config),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 5)
    lines = stdout.decode().strip().splitlines()
    assert lines, f"node client printed nothing; stderr: {stderr.decode()[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@dataclass
class NodeServer:
    """A running node/echo_server.js: its port, and the JSON events it has printed."""

    port: int
    process: asyncio.subprocess.Process
    events: list[dict[str, Any]] = field(default_factory=list)

    async def read_events(self, closes: int = 0) -> list[dict[str, Any]]:
        """Wait until ``closes`` close events were printed, stop the server, return all events.

        Waiting first matters: ws reports a close only once the TCP connection is gone, which may
        come after our side of the test is done.
        """
        assert self.process.stdout is not None
        while sum(event["event"] == "close" for event in self.events) < closes:
            line = await asyncio.wait_for(self.process.stdout.readline(), 5)
            if not line:
                break
            self.events.append(json.loads(line))
        await _stop(self.process)
        rest = await asyncio.wait_for(self.process.stdout.read(), 5)
        self.events += [json.loads(line) for line in rest.decode().splitlines() if line]
        return self.events


@asynccontextmanager
async def node_echo_server(config: dict[str, Any]) -> AsyncIterator[NodeServer]:
    """Start node/echo_server.js with ``config``; stop it by PID on the way out."""
    process = await asyncio.create_subprocess_exec(
        "node",
        str(NODE_SCRIPTS / "echo_server.js"),
        json.dumps(config),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
        assert first, "node echo server exited before listening"
        yield NodeServer(json.loads(first)["port"], process)
    finally:
        if process.returncode is None:
            await _stop(process)


async def echo_basic_messages(ws: Any) -> None:
    """Send BASIC_MESSAGES through any client with send()/recv(); check every echo."""
    for message in BASIC_MESSAGES:
        payload = make_payload(message.kind, message.size)
        if message.fragments > 1:
            await ws.send(split_payload(payload, message.fragments))
        else:
            await ws.send(payload)
        assert await ws.recv() == payload, message.label


async def framewire_client_round(ws: Any, compression: str | None) -> None:
    """Check a framewire client negotiated as asked, echo BASIC_MESSAGES, then one ping."""
    assert (ws.connection.deflate is not None) is (compression is not None)
    await echo_basic_messages(ws)
    assert await asyncio.wait_for(ws.ping(b"interop"), 5) >= 0
