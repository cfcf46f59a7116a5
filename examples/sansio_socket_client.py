"""Drive framewire's sans-I/O core from a plain blocking socket: a minimal WebSocket client.

    python examples/sansio_socket_client.py 127.0.0.1 9001 "hello"

Sends one text message to an echo server, prints the reply, and closes cleanly. No asyncio: the
socket moves bytes, framewire.sansio turns them into events and back.
"""

from __future__ import annotations

import socket
import sys

from framewire.sansio.connection import Connection, Role
from framewire.sansio.events import CloseReceived, TextMessage
from framewire.sansio.handshake import build_request, verify_response
from framewire.sansio.http11 import ResponseParser
from framewire.sansio.http11_events import ResponseHead


def echo_once(host: str, port: int, text: str) -> str:
    """Connect, send ``text``, return the first text message received, then close."""
    with socket.create_connection((host, port), timeout=10) as sock:
        # 1. Opening handshake: request bytes out, response head in.
        request, key = build_request(f"{host}:{port}", "/")
        sock.sendall(request)
        parser = ResponseParser()
        head: ResponseHead | None = None
        while head is None:
            data = sock.recv(4096)
            if not data:
                raise ConnectionError("server closed the connection during the handshake")
            parser.receive_data(data)
            head = next((e for e in parser.events_received() if isinstance(e, ResponseHead)), None)
        verify_response(head.status, head.headers, key=key)

        # 2. WebSocket: bytes in -> events out; commands -> bytes out.
        connection = Connection(Role.CLIENT)
        connection.receive_data(parser.take_unparsed())  # frames that came with the 101
        connection.send_text(text)
        sock.sendall(b"".join(connection.data_to_send()))
        reply = None
        while reply is None:
            for event in connection.events_received():
                if isinstance(event, TextMessage):
                    reply = event.data
            if reply is None:
                connection.receive_data(sock.recv(65536))

        # 3. Closing handshake: send close, read until the server's close and TCP close.
        connection.send_close(1000, "done")
        sock.sendall(b"".join(connection.data_to_send()))
        while True:
            data = sock.recv(65536)
            if not data:
                connection.receive_eof()
                break
            connection.receive_data(data)
            if any(isinstance(e, CloseReceived) for e in connection.events_received()):
                continue
        return reply


if __name__ == "__main__":
    print(echo_once(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "hi"))
