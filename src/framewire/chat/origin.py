"""OriginPolicy: which pages may open the chat's WebSocket (cross-site WebSocket hijacking).

Browsers send the page's origin with every WebSocket handshake, and cookies with it, so a
hostile page could otherwise talk to the chat in its visitor's name. Allowed: a handshake
without Origin (scripts and command-line clients send none), the server's own origin (same
host and port as the Host header), and the origins given with ``--allow-origin``. Refused:
every other origin, and ``Origin: null`` (sandboxed frames, file: pages).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["OriginPolicy", "normalize_origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> str | None:
    """Return ``scheme://host:port`` in lower case, or None if ``origin`` is not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}"


def _host_and_port(host_header: str, scheme: str) -> str | None:
    normalized = normalize_origin(f"{scheme}://{host_header}")
    return None if normalized is None else normalized.split("://", 1)[1]


class OriginPolicy:
    """Decides whether a handshake's Origin may open the chat's WebSocket."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        """Allow the same origin plus ``allowed`` (full origins: ``https://chat.example``).

        Raises:
            ValueError: an entry of ``allowed`` is not an origin.
        """
        self.allowed: set[str] = set()
        for origin in allowed:
            normalized = normalize_origin(origin)
            if normalized is None:
                raise ValueError(f"--allow-origin {origin!r} is not an origin like https://host")
            self.allowed.add(normalized)

    def refusal(self, origin: str | None, host: str | None) -> str | None:
        """Return None to allow the handshake, else the reason it is refused."""
        if origin is None:
            return None
        normalized = normalize_origin(origin)
        if normalized is None:
            return f"Origin {origin[:100]!r} is not allowed"
        if normalized in self.allowed:
            return None
        scheme, _, host_port = normalized.partition("://")
        if host and _host_and_port(host, scheme) == host_port:
            return None
        return f"Origin {origin[:100]!r} is not allowed (cross-site WebSocket)"
