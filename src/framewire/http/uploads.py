"""Stream a multipart/form-data request to disk: temporary file, then atomic rename.

Each file part is written, chunk by chunk as it arrives, to a hidden temporary file in the
target directory (same file system, so the final ``os.replace`` is atomic) and hashed on the way.
Only when its part is complete does it get its final, generated name. The request succeeds or
fails as a whole: if the client disconnects, a limit is hit, the body is malformed or the task is
cancelled, every file of the request (complete or not) is removed in a ``finally`` block.

A client-supplied filename is never used as a path: it is reduced to a display name (no
directories, no control characters, bounded length) and only a short, alphanumeric, non-active
extension is kept on the generated stored name.

Disk writes happen on the event loop: they are page-cache copies of one network chunk each.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from framewire.exceptions import HTTPError
from framewire.http.messages import Request
from framewire.sansio.limits import HTTPLimits
from framewire.sansio.multipart import (
    MultipartFailed,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    parse_boundary,
    parse_options_header,
)

__all__ = ["SavedFile", "UploadResult", "safe_extension", "sanitize_filename", "save_uploads"]

MAX_FILENAME_LENGTH = 200  # characters kept of a client's file name, for display
# Extensions a browser may execute or render as active content when the file is served back.
_ACTIVE_EXTENSIONS = frozenset(
    [
        "htm",
        "html",
        "shtml",
        "xhtml",
        "xht",
        "mht",
        "mhtml",
        "svg",
        "svgz",
        "xml",
        "xsl",
        "xslt",
        "js",
        "mjs",
        "cjs",
        "wasm",
        "swf",
        "php",
        "phtml",
        "cgi",
        "pl",
        "py",
        "sh",
        "bat",
        "cmd",
        "exe",
        "com",
        "dll",
        "msi",
        "jar",
        "vbs",
        "ps1",
        "hta",
    ]
)


@dataclass(frozen=True, slots=True)
class SavedFile:
    """A file part stored on disk.

    Attributes:
        field_name: the form field it came from.
        original_filename: the client's file name, sanitized for display (never a path).
        stored_name: the generated name under the upload directory.
        path: the full path of the stored file.
        size: its size in bytes.
        content_type: the part's Content-Type as the client declared it.
        sha256: hex SHA-256 of the content.
    """

    field_name: str
    original_filename: str
    stored_name: str
    path: Path
    size: int
    content_type: str
    sha256: str


@dataclass(slots=True)
class UploadResult:
    """The outcome of :func:`save_uploads`.

    Attributes:
        fields: the non-file form fields, decoded as UTF-8 (a repeated name keeps its last value).
        files: the stored files, in the order they arrived.
    """

    fields: dict[str, str] = field(default_factory=dict)
    files: list[SavedFile] = field(default_factory=list)


def sanitize_filename(filename: str) -> str:
    """Return a client file name reduced to a safe display name ("" if nothing is left).

    Drops any directory part (``/`` or ``\\``), control and format characters, leading dots and
    spaces; normalizes to NFC; keeps at most MAX_FILENAME_LENGTH characters (the extension kept).
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(char for char in name if unicodedata.category(char) not in ("Cc", "Cf"))
    name = name.strip().lstrip(". ")
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: MAX_FILENAME_LENGTH - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name


def safe_extension(filename: str) -> str:
    """Return ``".ext"`` (lower-case) when ``filename``'s extension is safe to keep, else ``""``.

    Safe: 1 to 10 ASCII letters or digits, and not an extension browsers treat as active content
    (``.html``, ``.svg``, ``.js`` ...), which would make a served upload a stored XSS.
    """
    stem, dot, extension = sanitize_filename(filename).rpartition(".")
    extension = extension.lower()
    if not dot or not stem or not 1 <= len(extension) <= 10:
        return ""
    if not (extension.isascii() and extension.isalnum()) or extension in _ACTIVE_EXTENSIONS:
        return ""
    return "." + extension


class _OpenFile:
    """A file part being written to a temporary file."""

    def __init__(self, directory: Path, start: PartStart) -> None:
        self.start = start
        descriptor, temporary = _make_temporary(directory)
        self.descriptor: int | None = descriptor
        self.temporary = Path(temporary)
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        assert self.descriptor is not None
        view = memoryview(data)
        while view:
            written = os.write(self.descriptor, view)
            view = view[written:]
        self.hash.update(data)
        self.size += len(data)

    def close(self) -> None:
        if self.descriptor is not None:
            descriptor, self.descriptor = self.descriptor, None
            os.close(descriptor)

    def commit(self, directory: Path) -> SavedFile:
        """Close the file and give it its final, generated name (atomic rename)."""
        self.close()
        filename = self.start.filename or ""
        stored_name = secrets.token_hex(16) + safe_extension(filename)
        path = directory / stored_name
        os.replace(self.temporary, path)
        return SavedFile(
            field_name=self.start.name,
            original_filename=sanitize_filename(filename),
            stored_name=stored_name,
            path=path,
            size=self.size,
            content_type=self.start.content_type,
            sha256=self.hash.hexdigest(),
        )


def _make_temporary(directory: Path) -> tuple[int, str]:
    return tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=directory)


class _UploadSink:
    """Turns parser events into form fields and stored files; removes everything on failure."""

    def __init__(self, directory: Path, allowed_content_types: frozenset[str] | None) -> None:
        self.directory = directory
        self.allowed = allowed_content_types
        self.result = UploadResult()
        self.current_file: _OpenFile | None = None
        self.field_name: str | None = None
        self.field_data = bytearray()

    def handle(self, events: Iterable[object]) -> None:
        for event in events:
            if isinstance(event, PartData):
                if self.current_file is not None:
                    self.current_file.write(event.data)
                elif self.field_name is not None:
                    self.field_data += event.data
            elif isinstance(event, PartStart):
                self._start(event)
            elif isinstance(event, PartEnd):
                self._end()
            elif isinstance(event, MultipartFailed):
                raise event.error

    def _start(self, start: PartStart) -> None:
        if start.filename is None:
            self.field_name = start.name
            self.field_data = bytearray()
        elif start.filename:  # filename="" is a file input left empty: nothing to store
            media_type = parse_options_header(start.content_type)[0]
            if self.allowed is not None and media_type not in self.allowed:
                raise HTTPError(415, f"file content type {media_type[:64]!r} is not allowed")
            self.current_file = _OpenFile(self.directory, start)

    def _end(self) -> None:
        if self.current_file is not None:
            self.result.files.append(self.current_file.commit(self.directory))
            self.current_file = None
        elif self.field_name is not None:
            try:
                self.result.fields[self.field_name] = self.field_data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise HTTPError(400, "form field is not valid UTF-8") from exc
            self.field_name = None

    def discard(self) -> None:
        """Remove the file being written and every file already stored."""
        if self.current_file is not None:
            self.current_file.close()
            with contextlib.suppress(FileNotFoundError):
                self.current_file.temporary.unlink()
            self.current_file = None
        for saved in self.result.files:
            with contextlib.suppress(FileNotFoundError):
                saved.path.unlink()
        self.result.files.clear()


async def save_uploads(
    request: Request,
    directory: str | os.PathLike[str],
    *,
    limits: HTTPLimits,
    allowed_content_types: Iterable[str] | None = None,
) -> UploadResult:
    """Read a multipart/form-data request body, storing each file part under ``directory``.

    The body is read with ``request.stream()``, so ``request.max_body_size`` applies as well:
    give the route a ``max_body_size`` that fits ``limits.max_upload_size`` plus the form.

    Args:
        request: the request; its body must not have been read yet.
        directory: where files are stored (created if missing).
        limits: max_multipart_parts, max_part_headers, max_part_header_size, max_form_size and
            max_upload_size (bytes, all files together) apply.
        allowed_content_types: media types accepted for file parts (``{"image/png"}``); None
            accepts any.

    Returns:
        the form fields and the stored files.

    Raises:
        HTTPError: 415 when the request or a file part has a refused content type, 400 for a
            malformed body, 413 past a limit. Nothing is left on disk when it raises.
        ConnectionResetError: the client went away (nothing is left on disk either).
    """
    content_type = request.headers.get("Content-Type") or ""
    if parse_options_header(content_type)[0] != "multipart/form-data":
        raise HTTPError(415, "expected a multipart/form-data body")
    parser = MultipartParser(parse_boundary(content_type), limits)
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    allowed = None
    if allowed_content_types is not None:
        allowed = frozenset(item.lower() for item in allowed_content_types)
    sink = _UploadSink(target, allowed)
    succeeded = False
    try:
        async for chunk in request.stream():
            parser.receive_data(chunk)
            sink.handle(parser.events_received())
        parser.receive_eof()
        sink.handle(parser.events_received())
        succeeded = True
        return sink.result
    finally:
        if not succeeded:
            sink.discard()
