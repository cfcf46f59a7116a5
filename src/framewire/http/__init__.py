"""HTTP application layer: routes, requests and responses, static files, uploads."""

from __future__ import annotations

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
