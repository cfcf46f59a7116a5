"""Static files under one root directory: content types, ETag/304, Range/206, no traversal.

Safety first: a URL path is turned into a file path only through :meth:`StaticFiles.resolve`,
which refuses NUL, backslashes, ``.`` and ``..`` segments (after percent-decoding, so ``%2e%2e``
and ``..%2f`` are caught) and then resolves symlinks and checks the real path is still under the
real root. Every refusal answers 404, so a probe learns nothing about the file system.

File system calls (stat, realpath) run on the event loop: they are fast on local disks, and the
body itself is sent with sendfile by the connection layer (FileBody).
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from framewire.http.messages import FileBody, Request, Response, error_response, redirect

__all__ = ["ByteRange", "StaticFiles", "parse_byte_range"]

# Returned by parse_byte_range when the range cannot be served (416).
UNSATISFIABLE: Final = "unsatisfiable"


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A satisfiable byte range: ``start`` included, ``stop`` excluded."""

    start: int
    stop: int


def parse_byte_range(value: str, size: int) -> ByteRange | str | None:
    """Parse a ``Range`` header for a representation of ``size`` bytes (RFC 9110 14.2).

    Returns:
        a ByteRange for one satisfiable range; :data:`UNSATISFIABLE` when no byte of the range
        exists (answer 416); None when the header should be ignored (not ``bytes=``, malformed,
        or several ranges, which are answered with the whole file).
    """
    unit, _, ranges = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges or len(ranges) > 64:
        return None
    first, dash, last = ranges.strip(" \t").partition("-")
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if not first.isascii() or not last.isascii():
        return None  # str.isdigit accepts non-ASCII digits
    if first == "":
        if last == "":
            return None
        suffix = int(last)  # bytes=-N: the last N bytes
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - suffix), size)
    start = int(first)
    stop = size if last == "" else int(last) + 1
    if last != "" and stop <= start:
        return None  # RFC 9110 14.1.1: last < first is invalid: ignore the header
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, min(stop, size))


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison of an If-None-Match / If-Range list against ``etag`` (RFC 9110 8.8.3.2)."""
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == bare for candidate in header.split(","))


class StaticFiles:
    """Serve the files under ``directory``.

    Args:
        directory: the root; nothing outside its real path is ever served.
        index: the file served for a directory path ending in ``/``.
    """

    def __init__(self, directory: str | os.PathLike[str], *, index: str = "index.html") -> None:
        self.root = Path(os.path.realpath(directory))
        self.index = index

    def locate(self, relative_path: str) -> Path | None:
        """Return the real path (file or directory) for a percent-decoded URL path, or None.

        None means "answer 404": NUL, backslash, ``.``/``..`` segments, and any path whose real
        location (symlinks followed) is outside the root or does not exist.
        """
        if "\x00" in relative_path or "\\" in relative_path:
            return None
        segments = [segment for segment in relative_path.split("/") if segment]
        if any(segment in (".", "..") for segment in segments):
            return None
        path = Path(os.path.realpath(os.path.join(self.root, *segments)))
        if not path.is_relative_to(self.root) or not path.exists():
            return None
        return path

    def resolve(self, relative_path: str) -> Path | None:
        """Return the file to serve for ``relative_path`` (a directory gives its index), or None."""
        path = self.locate(relative_path)
        if path is not None and path.is_dir():
            path = self.locate(relative_path + "/" + self.index)
        return path if path is not None and path.is_file() else None

    async def serve(self, request: Request, relative_path: str) -> Response:
        """Answer a GET or HEAD for ``relative_path`` (percent-decoded, below the mount point)."""
        located = self.locate(relative_path)
        if located is not None and located.is_dir() and not request.path.endswith("/"):
            # Relative links in the index page need the trailing slash.
            query = "?" + request.query if request.query else ""
            # One leading slash only: "//host/dir" would redirect to another host.
            return redirect("/" + request.raw_path.lstrip("/") + "/" + query, 301)
        path = self.resolve(relative_path)
        if path is None:
            return error_response(404, "Not Found")
        try:
            file_stat = path.stat()
        except OSError:
            return error_response(404, "Not Found")
        if not stat.S_ISREG(file_stat.st_mode):
            return error_response(404, "Not Found")
        return self._respond(request, path, file_stat)

    def _respond(self, request: Request, path: Path, file_stat: os.stat_result) -> Response:
        size = file_stat.st_size
        etag = f'"{file_stat.st_mtime_ns:x}-{size:x}"'
        last_modified = email.utils.formatdate(file_stat.st_mtime, usegmt=True)
        headers = [
            ("Content-Type", _content_type(path)),
            ("ETag", etag),
            ("Last-Modified", last_modified),
            ("Accept-Ranges", "bytes"),
        ]
        if _not_modified(request, etag, int(file_stat.st_mtime)):
            return Response(status=304, headers=headers[1:3])
        byte_range = self._requested_range(request, etag, last_modified, size)
        if byte_range == UNSATISFIABLE:
            return Response(
                status=416,
                headers=[("Content-Range", f"bytes */{size}")],
                body=b"Range Not Satisfiable\n",
            )
        if isinstance(byte_range, ByteRange):
            length = byte_range.stop - byte_range.start
            headers.append(
                ("Content-Range", f"bytes {byte_range.start}-{byte_range.stop - 1}/{size}")
            )
            return Response(
                status=206, headers=headers, body=FileBody(str(path), byte_range.start, length)
            )
        return Response(status=200, headers=headers, body=FileBody(str(path), 0, size))

    @staticmethod
    def _requested_range(
        request: Request, etag: str, last_modified: str, size: int
    ) -> ByteRange | str | None:
        value = request.headers.get("Range")
        if value is None or request.method not in ("GET", "HEAD"):
            return None
        if_range = request.headers.get("If-Range")
        # RFC 9110 13.1.5: a stale If-Range means "send the whole file".
        if if_range is not None and if_range.strip() not in (etag, last_modified):
            return None
        return parse_byte_range(value, size)


def _not_modified(request: Request, etag: str, mtime: int) -> bool:
    """Whether a conditional GET/HEAD may be answered 304 (RFC 9110 13.2.2 precedence)."""
    if request.method not in ("GET", "HEAD"):
        return False
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, etag)
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    return since.tzinfo is not None and mtime <= since.timestamp()


def _content_type(path: Path) -> str:
    content_type, encoding = mimetypes.guess_type(path.name)
    if content_type is None or encoding is not None:
        # A .gz file is sent as bytes: its Content-Encoding would make browsers inflate it.
        return "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/javascript",):
        return content_type + "; charset=utf-8"
    return content_type
