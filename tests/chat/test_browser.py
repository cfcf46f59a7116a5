"""The chat page in a real headless Chromium, against a real ``framewire chat`` subprocess.

Each test starts its own server (port 0, data in tmp_path) and opens one browser context per
person, so each has its own localStorage. Every page's console errors and uncaught exceptions
are collected, and every test ends by checking there were none (refused connections are allowed
only while a test has the server down on purpose).

Needs Debian's chromium at /usr/bin/chromium and the playwright package (never
``playwright install``: it downloads a browser of its own); skips with the reason otherwise.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.chat.browser_helpers import (
    CHROMIUM,
    SERVER_DOWN_ERRORS,
    TOO_LARGE_ERRORS,
    ChatPage,
    ChatServer,
    assert_no_console_errors,
    noisy_png,
    png,
    send_with_websocket,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, FilePayload

pytestmark = pytest.mark.browser

OpenPage = Callable[..., ChatPage]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "chat.png"
RECONNECT_TIMEOUT_MS = 20_000  # the page's retries come at most 0.5, 1, 2, 4, 8 s apart
MEBIBYTE = 1 << 20


def with_options(*options: str) -> pytest.MarkDecorator:
    """Run the test against a server started with these command-line options."""
    return pytest.mark.parametrize("server", [options], indirect=True, ids=[" ".join(options)])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module; skip when chromium or playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), timeout=30_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChatServer]:
    """A ``framewire chat`` subprocess with its data in tmp_path, stopped at the end.

    Options for it come from indirect parametrization: ``@with_options("--replay-limit", "3")``.
    """
    options: tuple[str, ...] = getattr(request, "param", ())
    chat = ChatServer(tmp_path / "data", tmp_path, extra_args=options).start()
    try:
        yield chat
    finally:
        chat.stop()


@pytest.fixture
def open_page(browser: Browser, server: ChatServer) -> Iterator[OpenPage]:
    """Open the chat as a new person: ``open_page("Ada")``; every page is closed at the end."""
    pages: list[ChatPage] = []

    def open_chat(name: str | None, **options: Any) -> ChatPage:
        chat = ChatPage.open(browser, server.url, name, **options)
        pages.append(chat)
        return chat

    try:
        yield open_chat
    finally:
        for chat in pages:
            chat.close()


def chat_history(server: ChatServer) -> list[dict[str, Any]]:
    """GET /chat-history: the newest 100 messages, oldest first, as sent (text HTML-escaped)."""
    with urllib.request.urlopen(server.url + "chat-history", timeout=5) as response:
        messages: list[dict[str, Any]] = json.load(response)
    return messages


def chart_png() -> bytes:
    """A small bar chart, for the screenshot: the same picture every run."""
    heights = [52, 88, 70, 120, 104, 146, 132]
    colours = [(79, 70, 229), (124, 58, 237), (14, 165, 233)]

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        bar, offset = divmod(x - 20, 44)
        if 0 <= bar < len(heights) and offset < 30 and 170 - heights[bar] <= y < 170:
            return colours[bar % len(colours)]
        if y in (170, 171) and 12 <= x < 340:
            return (148, 163, 184)
        return (248, 250, 252)

    return png(352, 190, pixel)


def file_payload(name: str, content: bytes, content_type: str = "image/png") -> FilePayload:
    """A file for the file picker (page.set_input_files), as if chosen from the disk."""
    return {"name": name, "mimeType": content_type, "buffer": content}


def drop_file(chat: ChatPage, content: bytes, name: str, content_type: str) -> None:
    """Drag a file onto the message list and drop it, as a person does from their desktop."""
    chat.page.evaluate(
        """([data, name, type]) => {
            const bytes = Uint8Array.from(atob(data), (char) => char.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type }));
            const target = document.getElementById('messages');
            for (const kind of ['dragenter', 'dragover', 'drop']) {
                target.dispatchEvent(new DragEvent(kind, {
                    bubbles: true, cancelable: true, dataTransfer: transfer,
                }));
            }
        }""",
        [base64.b64encode(content).decode(), name, content_type],
    )


def record_progress(chat: ChatPage) -> None:
    """Record in the page every change of the upload progress bar (read by progress_records)."""
    chat.page.evaluate(
        """() => {
            const progress = document.getElementById('progress');
            const bar = document.getElementById('progress-bar');
            window.progressRecords = [];
            const record = () => window.progressRecords.push({
                hidden: progress.hidden, state: progress.dataset.state, value: bar.value,
            });
            const observer = new MutationObserver(record);
            observer.observe(progress, { attributes: true, subtree: true });
        }"""
    )


def progress_records(chat: ChatPage) -> list[dict[str, Any]]:
    """What record_progress saw."""
    records: list[dict[str, Any]] = chat.page.evaluate("() => window.progressRecords")
    return records


def wait_for_image(chat: ChatPage, width: int) -> str:
    """Wait until an uploaded image of this width is shown, loaded; return its absolute URL."""
    selector = "#messages > li[data-seq] img[data-testid=image]"
    chat.page.wait_for_function(
        """([selector, width]) => [...document.querySelectorAll(selector)]
            .some((image) => image.complete && image.naturalWidth === width)""",
        arg=[selector, width],
    )
    src: str = chat.page.eval_on_selector_all(
        selector,
        "(images, width) => images.find((image) => image.naturalWidth === width).src",
        width,
    )
    return src


def shown(chat: ChatPage) -> list[tuple[int, str, str]]:
    """The stored messages a page shows, as (seq, author, text)."""
    return [(message["seq"], message["author"], message["text"]) for message in chat.messages()]


def test_two_pages_chat_live_and_see_each_others_names(open_page: OpenPage) -> None:
    ada = open_page("Ada")
    grace = open_page("Grace")

    ada.send("Hi Grace! Did last night's build pass?")
    grace.wait_for_message("Hi Grace! Did last night's build pass?", "Ada")
    grace.send("It did, 0 failures. Here is the benchmark chart:")
    ada.wait_for_message("It did, 0 failures. Here is the benchmark chart:", "Grace")
    grace.page.set_input_files("#file-input", files=[file_payload("chart.png", chart_png())])
    wait_for_image(ada, 352)
    ada.send("Lovely. Ship it!")
    grace.wait_for_message("Lovely. Ship it!", "Ada")
    grace.wait_for_seq_count(4)
    ada.wait_for_seq_count(4)

    expected = [
        (1, "Ada", "Hi Grace! Did last night's build pass?"),
        (2, "Grace", "It did, 0 failures. Here is the benchmark chart:"),
        (3, "Grace", ""),
        (4, "Ada", "Lovely. Ship it!"),
    ]
    assert shown(ada) == expected
    assert shown(grace) == expected
    assert [message["mine"] for message in ada.messages()] == [True, False, False, True]
    # Each sender's own copy came back from the server: nothing is left "sending".
    assert ada.page.locator("#pending > li").count() == 0
    assert ada.page.locator('#messages > li.mine[data-state="sent"]').count() == 2

    wait_for_image(grace, 352)
    grace.page.click("#message-input")
    grace.page.keyboard.type("Merging it now, thanks!", delay=60)  # over a second of typing
    ada.page.wait_for_selector("#typing:has-text('Grace is typing')")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    ada.page.evaluate("() => document.activeElement && document.activeElement.blur()")
    ada.page.screenshot(path=str(SCREENSHOT), animations="disabled", caret="hide")
    assert_no_console_errors([ada, grace])


def test_markup_is_shown_as_text_never_as_html(open_page: OpenPage, server: ChatServer) -> None:
    markup = "<b>hi</b> & \"x\" 'y' &amp; &lt;i&gt;"
    ada = open_page("Ada")
    mallory = open_page("<i>Mallory</i> & co")

    mallory.send(markup)
    ada.wait_for_message(markup, "<i>Mallory</i> & co")
    mallory.wait_for_message(markup, "<i>Mallory</i> & co")

    for chat in (ada, mallory):
        assert chat.page.locator("#messages b, #messages i").count() == 0
        assert chat.page.locator("#users i").count() == 0
        assert shown(chat) == [(1, "<i>Mallory</i> & co", markup)]
    names = ada.page.locator("#users .user-name").all_text_contents()
    assert sorted(names) == ["<i>Mallory</i> & co", "Ada"]
    # The server escaped it on the wire; the page decoded it exactly once.
    [stored] = chat_history(server)
    assert "<" not in stored["message"] and html.unescape(stored["message"]) == markup
    assert_no_console_errors([ada, mallory])


def test_name_is_remembered_across_visits(open_page: OpenPage) -> None:
    ada = open_page("Ada")
    ada.send("first visit")
    ada.wait_for_message("first visit", "Ada")

    ada.page.reload(wait_until="load")
    ada.wait_connected()
    assert not ada.page.locator("#name-dialog").evaluate("dialog => dialog.open")
    assert ada.page.text_content("#me-name") == "Ada"
    ada.wait_for_message("first visit", "Ada")
    assert ada.messages()[0]["mine"]
    assert_no_console_errors([ada])


def test_dropped_image_shows_in_other_page_after_a_progress_bar(
    open_page: OpenPage, server: ChatServer
) -> None:
    ada = open_page("Ada")
    grace = open_page("Grace")
    picture = noisy_png(1100, 1000)  # about 3.3 MB: the upload takes a visible moment
    record_progress(ada)

    drop_file(ada, picture, "holiday.png", "image/png")

    url = wait_for_image(grace, 1100)
    wait_for_image(ada, 1100)
    records = progress_records(ada)
    assert any(not record["hidden"] and record["state"] == "uploading" for record in records)
    assert any(record["value"] == 100 for record in records)
    ada.page.wait_for_selector("#progress", state="hidden")
    assert url.startswith(server.url + "uploads/")
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"] == "image/png"
        assert response.read() == picture

    # Shown capped in the list; a click opens it full size.
    height = grace.page.eval_on_selector(
        "#messages img[data-testid=image]", "image => image.getBoundingClientRect().height"
    )
    assert height <= 320
    grace.page.click("#messages img[data-testid=image]")
    grace.page.wait_for_function(
        "() => document.getElementById('viewer').open"
        " && document.getElementById('viewer-image').naturalWidth === 1100"
    )
    grace.page.click("#viewer-close")
    assert not grace.page.eval_on_selector("#viewer", "viewer => viewer.open")

    # Any other file is a download link, labelled with its name.
    drop_file(ada, b"remember the milk\n", "<notes>.txt", "text/plain")
    link = grace.page.locator("#messages > li[data-seq] a[data-testid=file]")
    link.wait_for()
    assert link.locator("[data-testid=file-name]").text_content() == "<notes>.txt"
    assert (link.get_attribute("href") or "").startswith("/uploads/")
    assert_no_console_errors([ada, grace])


def test_one_mebibyte_message_round_trips_and_is_shown_collapsed(open_page: OpenPage) -> None:
    ada = open_page("Ada")
    grace = open_page("Grace")
    words = "framewire carries one whole mebibyte of text in a single chat message; "
    text = (words * (MEBIBYTE // len(words) + 1))[: MEBIBYTE - 3] + "END"
    assert len(text.encode()) == MEBIBYTE

    # Pasted rather than typed: typing a mebibyte key by key would take minutes.
    ada.page.eval_on_selector("#message-input", "(input, text) => { input.value = text; }", text)
    ada.page.press("#message-input", "Enter")

    last = "#messages > li[data-seq]:last-child"
    grace.page.wait_for_selector(f"{last} [data-testid=show-more]")
    preview = grace.page.text_content(f"{last} .text") or ""
    assert 0 < len(preview) < 2000
    assert "MB" in (grace.page.text_content(f"{last} [data-testid=show-more]") or "")
    grace.page.click(f"{last} [data-testid=show-more]")
    shown_text = grace.page.eval_on_selector(f"{last} .text", "box => box.textContent")
    assert len(shown_text) == len(text) and shown_text == text
    ada.page.wait_for_selector('#messages > li.mine[data-state="sent"]')
    ada.wait_for_seq_count(1)
    assert ada.page.locator("#pending > li").count() == 0
    assert_no_console_errors([ada, grace])


def test_presence_and_typing_show_in_the_other_page(open_page: OpenPage) -> None:
    ada = open_page("Ada")
    grace = open_page("Grace")
    users = "#users .user-name"
    ada.page.wait_for_function(
        "selector => document.querySelectorAll(selector).length === 2", arg=users
    )
    assert ada.page.locator(users).all_text_contents() == ["Ada", "Grace"]
    assert ada.page.text_content("[data-user-count]") == "2"

    grace.page.click("#message-input")
    grace.page.keyboard.type("Hello there", delay=20)
    ada.page.wait_for_selector("#typing:has-text('Grace is typing')")
    assert grace.page.text_content("#typing") == ""  # nobody is told about their own typing
    # The notice goes away by itself a few seconds after the typing stops.
    ada.page.wait_for_function("() => document.getElementById('typing').textContent === ''")

    grace.close()
    ada.page.wait_for_function(
        "selector => document.querySelectorAll(selector).length === 1", arg=users
    )
    assert ada.page.locator(users).all_text_contents() == ["Ada"]
    assert_no_console_errors([ada, grace])


def test_page_reconnects_after_a_crash_and_shows_missed_messages_once(
    open_page: OpenPage, server: ChatServer
) -> None:
    ada = open_page("Ada")
    ada.send("before the crash")
    ada.wait_for_seq_count(1)

    server.kill()
    ada.page.wait_for_selector('#status:is([data-state="reconnecting"], [data-state="offline"])')
    server.start()  # the same port and data directory
    send_with_websocket(server, "Bot", ["missed one", "missed two", "missed three"])
    ada.wait_connected(timeout_ms=RECONNECT_TIMEOUT_MS)
    send_with_websocket(server, "Bot", ["after the reconnect"])

    ada.wait_for_seq_count(5)
    assert shown(ada) == [
        (1, "Ada", "before the crash"),
        (2, "Bot", "missed one"),
        (3, "Bot", "missed two"),
        (4, "Bot", "missed three"),
        (5, "Bot", "after the reconnect"),
    ]
    # It came back asking only for what it lacked.
    assert ada.socket_urls[-1].endswith("&since=1")
    assert_no_console_errors([ada], allowed=SERVER_DOWN_ERRORS)


def test_message_typed_while_server_is_down_is_delivered_once(
    open_page: OpenPage, server: ChatServer
) -> None:
    ada = open_page("Ada")
    grace = open_page("Grace")
    ada.send("all good so far")
    grace.wait_for_seq_count(1)

    server.kill()
    ada.page.wait_for_selector('#status:is([data-state="reconnecting"], [data-state="offline"])')
    ada.send("typed during the outage")
    ada.page.wait_for_selector('#pending > li[data-state="sending"]')
    assert ada.page.text_content("#pending .text") == "typed during the outage"
    server.start()

    ada.wait_connected(timeout_ms=RECONNECT_TIMEOUT_MS)
    grace.wait_connected(timeout_ms=RECONNECT_TIMEOUT_MS)
    grace.wait_for_message("typed during the outage", "Ada")
    ada.page.wait_for_selector("#pending > li", state="detached")
    ada.wait_for_seq_count(2)
    expected = [(1, "Ada", "all good so far"), (2, "Ada", "typed during the outage")]
    assert shown(ada) == expected
    assert shown(grace) == expected
    texts = [message["message"] for message in chat_history(server)]
    assert texts.count("typed during the outage") == 1
    assert_no_console_errors([ada, grace], allowed=SERVER_DOWN_ERRORS)


def test_history_survives_a_restart(open_page: OpenPage, server: ChatServer) -> None:
    ada = open_page("Ada")
    for text in ("one", "two", "three"):
        ada.send(text)
    ada.wait_for_seq_count(3)

    server.stop()  # SIGTERM: the page is told 1001 and starts reconnecting
    ada.page.wait_for_selector('#status:not([data-state="connected"])')
    server.start()

    grace = open_page("Grace")
    grace.wait_for_seq_count(3)
    expected = [(1, "Ada", "one"), (2, "Ada", "two"), (3, "Ada", "three")]
    assert shown(grace) == expected
    ada.wait_connected(timeout_ms=RECONNECT_TIMEOUT_MS)
    grace.send("four")
    ada.wait_for_message("four", "Grace")
    assert shown(ada) == [*expected, (4, "Grace", "four")]
    assert_no_console_errors([ada, grace], allowed=SERVER_DOWN_ERRORS)


def test_page_starts_over_when_the_server_history_was_reset(
    open_page: OpenPage, server: ChatServer
) -> None:
    ada = open_page("Ada")
    for text in ("old one", "old two", "old three"):
        ada.send(text)
    ada.wait_for_seq_count(3)

    server.stop()
    shutil.rmtree(server.data_dir)  # a new, empty history on the same port
    server.start()
    send_with_websocket(server, "Bot", ["new one"])

    ada.wait_connected(timeout_ms=RECONNECT_TIMEOUT_MS)
    ada.page.wait_for_selector("#notice:has-text('history was reset')")
    ada.wait_for_message("new one", "Bot")
    send_with_websocket(server, "Bot", ["new two"])  # live messages flow again
    ada.wait_for_message("new two", "Bot")
    assert shown(ada) == [(1, "Bot", "new one"), (2, "Bot", "new two")]
    assert_no_console_errors([ada], allowed=SERVER_DOWN_ERRORS)


def test_page_fits_a_phone_screen(open_page: OpenPage) -> None:
    phone = open_page("Ada", viewport={"width": 375, "height": 667})
    phone.send("a-very-long-word-without-spaces-" * 20)
    phone.wait_for_seq_count(1)

    assert phone.page.evaluate("() => document.documentElement.scrollWidth") <= 375
    sidebar = phone.page.locator("#sidebar")
    assert not sidebar.is_visible()
    phone.page.click("#users-toggle")
    phone.page.wait_for_selector("#sidebar .user-name:has-text('Ada')", state="visible")
    assert phone.page.is_visible("#send") and phone.page.is_visible("#message-input")
    assert_no_console_errors([phone])


@with_options("--history-default", "5")
def test_earlier_messages_load_on_demand_in_order(open_page: OpenPage, server: ChatServer) -> None:
    send_with_websocket(server, "Bot", [f"message {number}" for number in range(1, 13)])
    ada = open_page("Ada")
    ada.wait_for_seq_count(5)
    assert [seq for seq, _, _ in shown(ada)] == [8, 9, 10, 11, 12]

    ada.page.click("#load-earlier")
    ada.wait_for_seq_count(12)
    assert shown(ada) == [(seq, "Bot", f"message {seq}") for seq in range(1, 13)]
    ada.page.wait_for_selector("#load-earlier", state="hidden")
    assert_no_console_errors([ada])


@with_options("--replay-limit", "3")
def test_page_catches_up_through_history_after_missing_too_much(
    open_page: OpenPage, server: ChatServer
) -> None:
    ada = open_page("Ada")
    ada.send("before")
    ada.wait_for_seq_count(1)

    server.kill()
    # The browser goes offline too, so the page cannot come back before everything is sent.
    ada.context.set_offline(True)
    ada.page.wait_for_selector('#status[data-state="offline"]')
    server.start()
    missed = [f"missed {number}" for number in range(1, 8)]
    send_with_websocket(server, "Bot", missed)  # more than --replay-limit: the server says resync
    ada.context.set_offline(False)  # the page hears "online" and reconnects at once

    ada.wait_connected()
    ada.wait_for_seq_count(8)
    assert "resync" in ada.received_types()
    assert shown(ada) == [(1, "Ada", "before")] + [
        (seq, "Bot", text) for seq, text in enumerate(missed, start=2)
    ]
    assert_no_console_errors([ada], allowed=SERVER_DOWN_ERRORS)


@with_options("--message-rate", "4", "--message-burst", "2", "--max-message", "100")
def test_refused_messages_are_resent_in_order_or_marked_failed(
    open_page: OpenPage, server: ChatServer
) -> None:
    ada = open_page("Ada")
    grace = open_page("Grace")
    ada.send("x" * 101)  # over --max-message: refused for good
    failed = ada.page.locator('#pending > li[data-state="failed"]')
    failed.wait_for()
    assert "max_message=100" in (failed.text_content() or "")

    texts = [f"quick {number}" for number in range(1, 7)]
    for text in texts:
        ada.send(text)  # faster than --message-rate: some are rate_limited, then resent
    grace.wait_for_seq_count(6)
    ada.wait_for_seq_count(6)
    expected = [(seq, "Ada", text) for seq, text in enumerate(texts, start=1)]
    assert shown(ada) == shown(grace) == expected
    assert [message["message"] for message in chat_history(server)] == texts
    assert "error:rate_limited" in ada.received_types()  # the server did push back

    failed.get_by_role("button", name="Discard").click()
    ada.page.wait_for_selector("#pending > li", state="detached")
    assert_no_console_errors([ada, grace])


@with_options("--max-upload", "50000")
def test_too_large_upload_is_reported_and_not_shown(open_page: OpenPage) -> None:
    ada = open_page("Ada")
    ada.page.set_input_files("#file-input", files=[file_payload("huge.png", noisy_png(200, 200))])
    ada.page.wait_for_selector("#notice:has-text('huge.png is too large')")
    ada.page.wait_for_selector("#progress", state="hidden")
    assert ada.messages() == []
    assert_no_console_errors([ada], allowed=TOO_LARGE_ERRORS)
