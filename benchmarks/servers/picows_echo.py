"""picows echo server for the benchmarks (frame-level API: echoes each frame as it comes).

picows's frame-level API has no permessage-deflate, so --deflate runs its websockets-compatible
layer instead (`picows.websockets.asyncio.server.serve(compression="deflate")`, message-level,
no size limit, no pings). That layer answers a plain "permessage-deflate" and compresses with
zlib's defaults: level 6, memLevel 8, 15-bit windows, context kept both ways.
"""

from __future__ import annotations

from typing import Any

from _common import parse_arguments, run, tls_context
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

arguments = parse_arguments(__doc__ or "")
transports: set[WSTransport] = set()


class EchoListener(WSListener):  # type: ignore[misc]
    """Echo each data frame; answer close frames."""

    def on_ws_connected(self, transport: WSTransport) -> None:
        """Remember the connection for broadcasts."""
        transports.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """Forget the connection."""
        transports.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """Echo or broadcast data frames; reply to a close frame and disconnect."""
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
            return
        payload = frame.get_payload_as_bytes()
        if arguments.broadcast:
            for target in list(transports):
                target.send(frame.msg_type, payload, frame.fin)
        else:
            transport.send(frame.msg_type, payload, frame.fin)


async def main() -> None:
    """Serve until killed."""

    def listener_factory(request: WSUpgradeRequest) -> EchoListener:
        return EchoListener()

    server = await ws_create_server(
        listener_factory,
        "127.0.0.1",
        arguments.port,
        max_frame_size=64 * 1024 * 1024,
        ssl=tls_context(arguments),
    )
    await server.serve_forever()


async def main_with_deflate() -> None:
    """Serve echo through picows's websockets-compatible layer, compression on, until killed."""
    from picows.websockets.asyncio.server import serve

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(
        echo,
        "127.0.0.1",
        arguments.port,
        compression="deflate",
        max_size=None,
        ping_interval=None,
        ssl=tls_context(arguments),
    ) as server:
        await server.serve_forever()


run(main_with_deflate if arguments.deflate else main, arguments.uvloop)
