"""What store.py itself computes: the HTML escaping and the chatMessage object clients receive.
The Store contract, run against SQLite and Redis, is tests/chat/test_store_contract.py."""

from __future__ import annotations

from framewire.chat.store import ChatMessage, escape


def test_escape_covers_the_five_html_special_characters() -> None:
    assert escape("""<a href="x" title='y'>&</a>""") == (
        "&lt;a href=&quot;x&quot; title=&#x27;y&#x27;&gt;&amp;&lt;/a&gt;"
    )
    assert escape("plain é text") == "plain é text"


def test_wire_form_escapes_name_and_text_and_omits_what_is_unset() -> None:
    message = ChatMessage("id7", 7, "<ann>", "a & b", 1.5)
    assert message.to_wire() == {
        "messageType": "chatMessage",
        "id": "id7",
        "seq": 7,
        "username": "&lt;ann&gt;",
        "message": "a &amp; b",
        "timestamp": 1.5,
    }


def test_wire_form_carries_client_id_and_upload_with_its_type() -> None:
    message = ChatMessage("i", 1, "ann", "", 1.0, client_id="c1", upload="/uploads/x.bin")
    wire = message.to_wire()
    assert wire["clientId"] == "c1"
    assert (wire["upload"], wire["contentType"]) == ("/uploads/x.bin", "application/octet-stream")
    typed = ChatMessage("i", 1, "ann", "", 1.0, upload="/uploads/x.png", content_type="image/png")
    assert typed.to_wire()["contentType"] == "image/png"
    assert "clientId" not in typed.to_wire()
