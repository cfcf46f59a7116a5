"""App: HTTP routes by method and path, WebSocket routes, static mounts, errors as responses.

Routing is segment-wise, without regular expressions: a pattern such as ``/uploads/{name}`` is a
tuple of segments, each either a literal or a parameter that takes one whole path segment. The
request path is split on ``/`` *before* percent-decoding, so ``%2F`` inside a segment is part of
that segment's value and never a separator. Routes without parameters are found with one dict
look-up; the others are tried in registration order, each in time linear in the segment count.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

from framewire.exceptions import HTTPError
from framewire.http.messages import Request, Response, error_response
from framewire.http.static import StaticFiles

__all__ = ["App", "HTTPHandler", "Route", "WebSocketHandler"]

logger = logging.getLogger("framewire.http")

HTTPHandler = Callable[[Request], Awaitable[Response]]
WebSocketHandler = Callable[[Any], Awaitable[None]]
_HandlerT = TypeVar("_HandlerT", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True, slots=True)
class _Pattern:
    """A path pattern: literal segments, and parameter names where a segment is ``{name}``."""

    text: str
    segments: tuple[str, ...]
    params: tuple[str | None, ...]  # parameter name per segment, None for a literal

    @classmethod
    def parse(cls, text: str) -> _Pattern:
        if not text.startswith("/"):
            raise ValueError(f"route path {text!r} must start with '/'")
        segments = tuple(text.split("/"))
        params: list[str | None] = []
        for segment in segments:
            if segment.startswith("{") and segment.endswith("}"):
                name = segment[1:-1]
                if not name.isidentifier():
                    raise ValueError(f"bad parameter {segment!r} in route path {text!r}")
                params.append(name)
            elif "{" in segment or "}" in segment:
                raise ValueError(f"a parameter must be a whole segment in {text!r}")
            else:
                params.append(None)
        return cls(text, segments, tuple(params))

    @property
    def shape(self) -> tuple[str | None, ...]:
        """The literals, with None for parameters: equal shapes match the same paths."""
        return tuple(
            None if name is not None else literal
            for literal, name in zip(self.segments, self.params, strict=True)
        )

    @property
    def has_params(self) -> bool:
        return any(name is not None for name in self.params)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """Return the parameters if the decoded ``segments`` match, else None."""
        if len(segments) != len(self.segments):
            return None
        values: dict[str, str] = {}
        for literal, name, segment in zip(self.segments, self.params, segments, strict=True):
            if name is None:
                if segment != literal:
                    return None
            elif not segment:
                return None  # a parameter never matches an empty segment
            else:
                values[name] = segment
        return values


def _split_path(raw_path: str) -> list[str]:
    """Split a percent-encoded path into decoded segments (``%2F`` stays inside its segment)."""
    segments = raw_path.split("/")
    if "%" in raw_path:
        return [unquote(segment) for segment in segments]
    return segments


@dataclass(frozen=True, slots=True)
class Route:
    """One HTTP route: a path pattern, the methods it answers and its handler.

    Attributes:
        path: the pattern as written (``/uploads/{name}``).
        methods: upper-case method names.
        handler: the coroutine function called with the Request.
        max_body_size: the request body limit for this route in bytes (None: the server's).
    """

    path: str
    methods: frozenset[str]
    handler: HTTPHandler
    max_body_size: int | None
    pattern: _Pattern


class App:
    """A web application: pass it to ``framewire.serve()`` or use ``app.handle_http``.

    Routes are registered with decorators (:meth:`route`, :meth:`get`, :meth:`post`,
    :meth:`websocket`) or :meth:`add_route`; :meth:`static` mounts a directory. A known path
    with the wrong method gets 405 with ``Allow``; an unknown path gets 404; GET routes also
    answer HEAD; an :class:`HTTPError` raised by a handler becomes a response with its status;
    any other exception is logged and answered 500.
    """

    def __init__(self) -> None:
        """Create an application with no routes."""
        self._exact: dict[tuple[str, ...], list[Route]] = {}
        self._parametrized: list[Route] = []
        self._websockets: list[tuple[_Pattern, WebSocketHandler]] = []
        self._mounts: list[tuple[str, StaticFiles]] = []

    # Registration.

    def add_route(
        self,
        path: str,
        handler: HTTPHandler,
        methods: Iterable[str] = ("GET",),
        *,
        max_body_size: int | None = None,
    ) -> Route:
        """Register ``handler`` for ``methods`` on ``path`` and return the Route.

        Raises:
            ValueError: on a malformed pattern, or a method already routed on the same pattern.
        """
        pattern = _Pattern.parse(path)
        method_set = frozenset(method.upper() for method in methods)
        route = Route(path, method_set, handler, max_body_size, pattern)
        if pattern.has_params:
            existing = [r for r in self._parametrized if r.pattern.shape == pattern.shape]
        else:
            existing = self._exact.get(pattern.segments, [])
        for other in existing:
            if other.methods & method_set:
                raise ValueError(f"{sorted(other.methods & method_set)} {path} is routed twice")
        if pattern.has_params:
            self._parametrized.append(route)
        else:
            self._exact.setdefault(pattern.segments, []).append(route)
        return route

    def route(
        self,
        path: str,
        methods: Iterable[str] = ("GET",),
        *,
        max_body_size: int | None = None,
    ) -> Callable[[_HandlerT], _HandlerT]:
        """Decorator: route ``methods`` on ``path`` to the decorated coroutine function.

        ``max_body_size`` (bytes) replaces the server's body limit for this route's requests.
        """

        def decorator(handler: _HandlerT) -> _HandlerT:
            self.add_route(path, handler, methods, max_body_size=max_body_size)
            return handler

        return decorator

    def get(
        self, path: str, *, max_body_size: int | None = None
    ) -> Callable[[_HandlerT], _HandlerT]:
        """Decorator: route GET (and so HEAD) on ``path``."""
        return self.route(path, ("GET",), max_body_size=max_body_size)

    def post(
        self, path: str, *, max_body_size: int | None = None
    ) -> Callable[[_HandlerT], _HandlerT]:
        """Decorator: route POST on ``path``."""
        return self.route(path, ("POST",), max_body_size=max_body_size)

    def websocket(self, path: str) -> Callable[[_HandlerT], _HandlerT]:
        """Decorator: handle WebSocket connections opened on ``path``.

        The handler receives the WebSocket; ``ws.path_params`` holds the path parameters.
        """

        def decorator(handler: _HandlerT) -> _HandlerT:
            self._websockets.append((_Pattern.parse(path), handler))
            return handler

        return decorator

    def static(self, prefix: str, directory: str, *, index: str = "index.html") -> StaticFiles:
        """Serve the files under ``directory`` at ``prefix`` (``/static/app.js``), GET and HEAD.

        Routes registered on the same paths take precedence over the mount.
        """
        if not prefix.startswith("/"):
            raise ValueError(f"static prefix {prefix!r} must start with '/'")
        files = StaticFiles(directory, index=index)
        self._mounts.append((prefix.rstrip("/"), files))
        return files

    # Serving.

    def _candidates(self, raw_path: str) -> tuple[list[Route], dict[str, str]]:
        """Return the routes whose pattern matches the path, and the first one's parameters."""
        segments = _split_path(raw_path)
        routes = self._exact.get(tuple(segments))
        if routes:
            return routes, {}
        found: list[Route] = []
        first_params: dict[str, str] = {}
        for route in self._parametrized:
            params = route.pattern.match(segments)
            if params is not None:
                if not found:
                    first_params = params
                found.append(route)
        return found, first_params

    async def handle_http(self, request: Request) -> Response:
        """Answer one HTTP request: the HTTP handler to give the server."""
        try:
            return await self._dispatch(request)
        except HTTPError as error:
            return error_response(error.http_status, error.reason)
        except ConnectionError:
            logger.info("client went away during %s %s", request.method, request.raw_path)
            return error_response(500)
        except Exception:
            logger.exception("error in handler for %s %s", request.method, request.raw_path)
            return error_response(500)

    async def _dispatch(self, request: Request) -> Response:
        routes, params = self._candidates(request.raw_path)
        method = request.method
        if routes:
            route = next((r for r in routes if method in r.methods), None)
            if route is None and method == "HEAD":
                route = next((r for r in routes if "GET" in r.methods), None)
            if route is None:
                return _method_not_allowed(set().union(*(r.methods for r in routes)))
            if route is not routes[0] and route.pattern.has_params:
                params = route.pattern.match(_split_path(request.raw_path)) or {}
            request.path_params = params
            if route.max_body_size is not None:
                request.max_body_size = route.max_body_size
            return await route.handler(request)
        for prefix, files in self._mounts:
            path = request.path
            if path == prefix or path.startswith(prefix + "/"):
                if method not in ("GET", "HEAD"):
                    return _method_not_allowed({"GET"})
                return await files.serve(request, path[len(prefix) :])
        return error_response(404, "Not Found")

    def _websocket_route(self, raw_path: str) -> tuple[WebSocketHandler, dict[str, str]] | None:
        segments = _split_path(raw_path.partition("?")[0])
        for pattern, handler in self._websockets:
            params = pattern.match(segments)
            if params is not None:
                return handler, params
        return None

    async def process_request(self, request: Request) -> Response | None:
        """Check a WebSocket upgrade request: None to accept, a 404 Response if no route fits."""
        if self._websocket_route(request.raw_path) is None:
            return error_response(404, "Not Found")
        return None

    async def __call__(self, ws: Any) -> None:
        """Run the WebSocket route matching ``ws.request.path`` (the server's ws handler)."""
        found = self._websocket_route(ws.request.path)
        if found is None:
            await ws.close(1008, "no WebSocket route for this path")
            return
        handler, params = found
        ws.path_params = params
        await handler(ws)


def _method_not_allowed(methods: set[str]) -> Response:
    if "GET" in methods:
        methods = methods | {"HEAD"}
    response = error_response(405, "Method Not Allowed")
    assert isinstance(response.headers, list)
    response.headers.append(("Allow", ", ".join(sorted(methods))))
    return response
