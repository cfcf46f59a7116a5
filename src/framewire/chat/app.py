"""The chat's HTTP and WebSocket routes, on framewire.http.App.

/ (the page), /static/... (its files), /websocket, /chat-history, /upload, /uploads/<name>
and /healthz. Each handler only checks its input and calls the hub or the store: the rules of
the room live in hub.py, the storage in the Store.
"""

from __future__ import annotations

import contextlib
import errno
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from framewire import HTTPError
from framewire.chat.config import ChatConfig
from framewire.chat.hub import Hub
from framewire.chat.origin import OriginPolicy
from framewire.chat.store import Draft, StoreUnavailable
from framewire.chat.upload_types import classify_upload
from framewire.http import (
    App,
    HTTPLimits,
    Request,
    Response,
    error_response,
    file_response,
    json_response,
    save_uploads,
)

__all__ = ["PAGE_DIR", "build_app", "clean_username"]

PAGE_DIR = Path(__file__).parent / "page"
DEFAULT_USERNAME = "Guest"
_FORM_ALLOWANCE = 2 << 20  # multipart fields and boundaries beside the file, in bytes
_STORED_NAME = re.compile(r"[0-9a-f]{32}(\.[a-z0-9]{1,10})?")
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean_username(raw: str | None, max_length: int) -> str:
    """Return the user name to use: control and bidi characters removed, whitespace trimmed,
    truncated to ``max_length`` characters; "Guest" when nothing is left."""
    name = _CONTROL.sub("", raw or "").strip()[:max_length].strip()
    return name or DEFAULT_USERNAME


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _whole_number(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise HTTPError(400, f"{name} must be a whole number >= 0")
    return int(text)


def _content_security_policy(host: str | None) -> str:
    # 'self' covers ws: and wss: in current browsers; the explicit sources are for older ones.
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        f"connect-src 'self'{sockets}; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )


class ChatRoutes:
    """The chat's route handlers, bound to one hub and configuration."""

    def __init__(self, hub: Hub, config: ChatConfig) -> None:
        """Read the page once; nothing else happens until a request."""
        self.hub = hub
        self.config = config
        self.limits = config.limits
        self.origins = OriginPolicy(config.allow_origins)
        self.index_html = (PAGE_DIR / "index.html").read_bytes()

    async def page(self, request: Request) -> Response:
        """GET /: the chat page, with a policy that allows only this server's resources."""
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", _content_security_policy(request.headers.get("Host"))),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-cache"),
        ]
        return Response(status=200, headers=headers, body=self.index_html)

    async def favicon(self, request: Request) -> Response:
        """GET /favicon.ico: the page's icon."""
        return file_response(PAGE_DIR / "favicon.svg", content_type="image/svg+xml")

    async def history(self, request: Request) -> Response:
        """GET /chat-history[?before=SEQ|after=SEQ][&limit=N]: stored messages, oldest first."""
        params = request.query_params
        before = _whole_number(_first(params, "before"), "before")
        after = _whole_number(_first(params, "after"), "after")
        limit = _whole_number(_first(params, "limit"), "limit")
        if before is not None and after is not None:
            raise HTTPError(400, "give before or after, not both")
        if limit is None:
            limit = self.limits.history_default
        if not 1 <= limit <= self.limits.history_max:
            raise HTTPError(400, f"limit must be between 1 and {self.limits.history_max}")
        try:
            if after is not None:
                messages = await self.hub.store.after(after, limit)
            else:
                messages = await self.hub.store.before(before, limit)
        except StoreUnavailable as error:
            raise HTTPError(503, f"history unavailable: {error}") from error
        return json_response([message.to_wire() for message in messages])

    async def healthz(self, request: Request) -> Response:
        """GET /healthz: 200 when messages can be stored and delivered, else 503 with why."""
        problem = await self.hub.store.health()
        body: dict[str, Any] = {
            "store": self.hub.store.kind,
            "connections": len(self.hub.clients),
        }
        if problem is None:
            return json_response({"status": "ok", **body})
        return json_response({"status": "unavailable", "reason": problem, **body}, 503)

    async def upload(self, request: Request) -> Response:
        """POST /upload: store the file of field ``upload`` and post it as a chat message."""
        refusal = self.origins.refusal(request.headers.get("Origin"), request.headers.get("Host"))
        if refusal is not None:
            raise HTTPError(403, refusal)  # another site's page posting in its visitor's name
        max_upload = self.limits.max_upload
        declared = request.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_upload + _FORM_ALLOWANCE:
            raise HTTPError(413, f"upload exceeds max_upload={max_upload} bytes")
        http_limits = HTTPLimits(
            max_upload_size=max_upload,
            max_multipart_parts=8,
            max_form_size=self.limits.max_message + 4096,
        )
        request.max_body_size = max_upload + _FORM_ALLOWANCE
        try:
            result = await save_uploads(request, self.hub.store.uploads_dir, limits=http_limits)
        except HTTPError as error:
            if error.http_status == 413:
                raise HTTPError(413, f"upload exceeds max_upload={max_upload} bytes") from error
            raise
        except OSError as error:
            # save_uploads() has removed the partial file already.
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise HTTPError(
                    507, "not enough disk space on the server for this upload"
                ) from error
            raise
        saved = [file for file in result.files if file.field_name == "upload"]
        try:
            if len(saved) != 1 or len(result.files) != 1:
                raise HTTPError(400, "send exactly one file, in the form field 'upload'")
            return await self._post_upload(result.fields, saved[0].path)
        except BaseException:
            for file in result.files:
                with contextlib.suppress(FileNotFoundError):
                    file.path.unlink()
            raise

    async def _post_upload(self, fields: dict[str, str], path: Path) -> Response:
        caption = fields.get("message", "")
        if len(caption.encode("utf-8")) > self.limits.max_message:
            raise HTTPError(413, f"message exceeds max_message={self.limits.max_message} bytes")
        client_id = fields.get("clientId") or None
        if client_id is not None and len(client_id) > 64:
            raise HTTPError(400, "clientId must be a string of 1-64 characters")
        served = classify_upload(path)
        draft = Draft(
            username=clean_username(fields.get("username"), self.limits.max_username),
            message=caption,
            client_id=client_id,
            upload=f"/uploads/{path.name}",
            content_type=served.content_type,
        )
        try:
            outcome = await self.hub.store.append(draft)
        except StoreUnavailable as error:
            raise HTTPError(503, f"upload not delivered: {error}") from error
        message = outcome.message
        if outcome.duplicate:
            path.unlink()  # the earlier upload with this clientId stands
        body = {"url": message.upload, "id": message.id, "seq": message.seq}
        return json_response(body, 200 if outcome.duplicate else 201)

    async def uploaded_file(self, request: Request) -> Response:
        """GET /uploads/<name>: the exact bytes; images inline, the rest as attachments."""
        name = request.path_params["name"]
        path = self.hub.store.uploads_dir / name
        if not _STORED_NAME.fullmatch(name) or not path.is_file():
            return error_response(404, "no such upload")
        served = classify_upload(path)
        response = file_response(
            path,
            content_type=served.content_type,
            download_name=None if served.inline else name,
        )
        assert isinstance(response.headers, list)
        response.headers += [
            ("Content-Security-Policy", "default-src 'none'; sandbox"),
            ("Cache-Control", "public, max-age=31536000, immutable"),
        ]
        return response

    async def check_upgrade(self, request: Request) -> Response | None:
        """Refuse a /websocket handshake from another site's page, or past max_connections."""
        refusal = self.origins.refusal(request.headers.get("Origin"), request.headers.get("Host"))
        if refusal is not None:
            return error_response(403, refusal)
        if len(self.hub.clients) >= self.limits.max_connections:
            return error_response(
                503, f"server full: max_connections={self.limits.max_connections}"
            )
        params = request.query_params
        try:
            _whole_number(_first(params, "since"), "since")
        except HTTPError as error:
            return error_response(400, error.reason)
        return None

    async def websocket(self, websocket: Any) -> None:
        """/websocket?username=NAME[&since=SEQ]: one chat connection."""
        params = parse_qs(websocket.request.query, keep_blank_values=True)
        username = clean_username(_first(params, "username"), self.limits.max_username)
        since = _whole_number(_first(params, "since"), "since")
        await self.hub.serve(websocket, username, since)


class ChatApp(App):
    """The chat's App: framewire.http.App with the chat's routes and upgrade checks."""

    def __init__(self, routes: ChatRoutes) -> None:
        """Register every route of ``routes``."""
        super().__init__()
        self.routes = routes
        self.add_route("/", routes.page)
        self.add_route("/favicon.ico", routes.favicon)
        self.add_route("/chat-history", routes.history)
        self.add_route("/healthz", routes.healthz)
        self.add_route("/upload", routes.upload, ("POST",))
        self.add_route("/uploads/{name}", routes.uploaded_file)
        self.websocket("/websocket")(routes.websocket)
        self.static("/static", str(PAGE_DIR))

    async def process_request(self, request: Request) -> Response | None:
        """Check a WebSocket upgrade: the route, then the chat's origin and capacity rules."""
        refusal = await super().process_request(request)
        if refusal is not None:
            return refusal
        return await self.routes.check_upgrade(request)


def build_app(hub: Hub, config: ChatConfig) -> ChatApp:
    """Return the chat application over ``hub``."""
    return ChatApp(ChatRoutes(hub, config))
