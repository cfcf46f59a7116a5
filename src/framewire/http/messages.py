"""Request, Response and FileBody (from the asyncio layer), and helpers that build responses."""

from __future__ import annotations

import json
import mimetypes
import os
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from framewire.aio.http1.messages import FileBody, Request, Response

__all__ = [
    "FileBody",
    "Request",
    "Response",
    "error_response",
    "file_response",
    "html_response",
    "json_response",
    "redirect",
    "text_response",
]


def json_response(obj: Any, status: int = 200) -> Response:
    """Return ``obj`` serialized as compact JSON (UTF-8, ``application/json``)."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status=status, headers=[("Content-Type", "application/json")], body=body)


def text_response(text: str, status: int = 200) -> Response:
    """Return ``text`` as ``text/plain; charset=utf-8``."""
    headers = [("Content-Type", "text/plain; charset=utf-8")]
    return Response(status=status, headers=headers, body=text.encode("utf-8"))


def html_response(html: str, status: int = 200) -> Response:
    """Return ``html`` as ``text/html; charset=utf-8``."""
    headers = [("Content-Type", "text/html; charset=utf-8")]
    return Response(status=status, headers=headers, body=html.encode("utf-8"))


def redirect(location: str, status: int = 302) -> Response:
    """Return a redirect to ``location`` (301, 302, 303, 307 or 308).

    Raises:
        ValueError: if ``status`` is not a redirect status or ``location`` contains CR, LF or NUL
            (which would split the response head).
    """
    if status not in (301, 302, 303, 307, 308):
        raise ValueError(f"{status} is not a redirect status")
    if any(char in location for char in "\r\n\x00"):
        raise ValueError("redirect location contains CR, LF or NUL")
    return Response(status=status, headers=[("Location", location)])


def error_response(status: int, reason: str | None = None) -> Response:
    """Return a short plain-text error page: ``"404 Not Found"``.

    ``reason`` is sent to the client: pass only text that is safe to show (HTTPError.reason is).
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    text = f"{status} {reason or phrase}".rstrip() + "\n"
    return text_response(text, status)


def file_response(
    path: str | os.PathLike[str],
    *,
    content_type: str | None = None,
    download_name: str | None = None,
    status: int = 200,
) -> Response:
    """Return the file at ``path``, sent with sendfile.

    Args:
        path: the file; the caller is responsible for it being a file it means to serve (see
            :class:`framewire.http.static.StaticFiles` for serving user-chosen paths).
        content_type: defaults to a guess from the file name, else application/octet-stream.
        download_name: when given, asks the browser to save the file under this name
            (Content-Disposition: attachment, RFC 6266 with a UTF-8 ``filename*``).
        status: the status code.
    """
    file_path = os.fspath(path)
    if content_type is None:
        content_type = mimetypes.guess_type(file_path)[0] or "application/octet-stream"
    headers = [("Content-Type", content_type), ("X-Content-Type-Options", "nosniff")]
    if download_name is not None:
        headers.append(("Content-Disposition", _attachment(download_name)))
    return Response(status=status, headers=headers, body=FileBody(file_path))


def _attachment(name: str) -> str:
    """Return a Content-Disposition value with an ASCII fallback and a UTF-8 filename*."""
    fallback = "".join(
        char if char.isascii() and char.isprintable() and char not in '"\\' else "_"
        for char in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
