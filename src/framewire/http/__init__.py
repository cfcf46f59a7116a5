"""HTTP application layer: routes, requests and responses, static files, uploads.

The names are imported on first use: the asyncio server connection imports
framewire.http.messages (Request, Response), which should not load the router, static files and
uploads with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from framewire._lazy import lazy_attributes

__all__ = [
    "App",
    "FileBody",
    "HTTPLimits",
    "Request",
    "Response",
    "Route",
    "SavedFile",
    "StaticFiles",
    "UploadResult",
    "error_response",
    "file_response",
    "html_response",
    "json_response",
    "redirect",
    "save_uploads",
    "text_response",
]

_MESSAGES = "framewire.http.messages"
_LAZY = {
    "App": "framewire.http.app",
    "Route": "framewire.http.app",
    "FileBody": _MESSAGES,
    "Request": _MESSAGES,
    "Response": _MESSAGES,
    "error_response": _MESSAGES,
    "file_response": _MESSAGES,
    "html_response": _MESSAGES,
    "json_response": _MESSAGES,
    "redirect": _MESSAGES,
    "text_response": _MESSAGES,
    "StaticFiles": "framewire.http.static",
    "SavedFile": "framewire.http.uploads",
    "UploadResult": "framewire.http.uploads",
    "save_uploads": "framewire.http.uploads",
    "HTTPLimits": "framewire.sansio.limits",
}

if TYPE_CHECKING:
    from framewire.http.app import App, Route
    from framewire.http.messages import (
        FileBody,
        Request,
        Response,
        error_response,
        file_response,
        html_response,
        json_response,
        redirect,
        text_response,
    )
    from framewire.http.static import StaticFiles
    from framewire.http.uploads import SavedFile, UploadResult, save_uploads
    from framewire.sansio.limits import HTTPLimits


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)
