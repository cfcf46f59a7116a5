"""The response helpers of framewire.http.messages: JSON, text, HTML, redirects, error pages and
file downloads."""

from __future__ import annotations

import pytest

from framewire.http.messages import (
    FileBody,
    error_response,
    file_response,
    html_response,
    json_response,
    redirect,
)
from tests.http.helpers import header


def test_response_helpers() -> None:
    response = json_response({"a": "é"}, status=201)
    assert (response.status, response.body) == (201, '{"a":"é"}'.encode())
    assert header(response, "Content-Type") == "application/json"
    assert header(html_response("<p>"), "Content-Type") == "text/html; charset=utf-8"
    assert error_response(404).body == b"404 Not Found\n"
    assert header(redirect("/x", 303), "Location") == "/x"
    with pytest.raises(ValueError):
        redirect("/x\r\nSet-Cookie: a=b")
    with pytest.raises(ValueError):
        redirect("/x", 200)
    response = file_response("/tmp/report.pdf", download_name='ré"port.pdf')
    assert response.body == FileBody("/tmp/report.pdf")
    assert header(response, "Content-Type") == "application/pdf"
    disposition = header(response, "Content-Disposition")
    assert (
        disposition == "attachment; filename=\"r__port.pdf\"; filename*=UTF-8''r%C3%A9%22port.pdf"
    )
