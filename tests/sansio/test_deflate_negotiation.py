"""Tests for framewire.sansio.deflate_negotiation: offers, answers and agreed parameters."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framewire.exceptions import InvalidHandshake, NegotiationError
from framewire.sansio.deflate_negotiation import (
    DeflateConfig,
    DeflateParameters,
    client_offer,
    client_verify,
    server_negotiate,
)

DEFAULT = DeflateConfig()
P = DeflateParameters
PMD = "permessage-deflate"
SNCT = "server_no_context_takeover"


# -- server ---------------------------------------------------------------------------------------

# RFC 7692's answering rules, shown by a server that keeps its compression context unless asked
# (server_no_context_takeover=False): each config below is used with that setting, where it
# leaves server_no_context_takeover at its default (None).
SERVER_ACCEPTS = [
    # (offer, server config, answer, agreed)
    (PMD, DEFAULT, PMD, P()),
    ("PerMessage-Deflate", DEFAULT, PMD, P()),
    (f"{PMD}; server_no_context_takeover", DEFAULT, f"{PMD}; server_no_context_takeover", P(True)),
    (
        f"{PMD}; client_no_context_takeover",
        DEFAULT,
        f"{PMD}; client_no_context_takeover",
        P(client_no_context_takeover=True),
    ),
    (
        f"{PMD}; Server_No_Context_Takeover; CLIENT_NO_CONTEXT_TAKEOVER",
        DEFAULT,
        f"{PMD}; server_no_context_takeover; client_no_context_takeover",
        P(True, True),
    ),
    # the server may declare no_context_takeover for either side unasked
    (
        PMD,
        DeflateConfig(server_no_context_takeover=True, client_no_context_takeover=True),
        f"{PMD}; server_no_context_takeover; client_no_context_takeover",
        P(True, True),
    ),
    # server_max_window_bits: echo the offer, or the smaller of offer and config
    (
        f"{PMD}; server_max_window_bits=10",
        DEFAULT,
        f"{PMD}; server_max_window_bits=10",
        P(server_max_window_bits=10),
    ),
    (
        f'{PMD}; server_max_window_bits="10"',
        DEFAULT,
        f"{PMD}; server_max_window_bits=10",
        P(server_max_window_bits=10),
    ),
    (
        f"{PMD}; server_max_window_bits=10",
        DeflateConfig(server_max_window_bits=12),
        f"{PMD}; server_max_window_bits=10",
        P(server_max_window_bits=10),
    ),
    (
        f"{PMD}; server_max_window_bits=13",
        DeflateConfig(server_max_window_bits=12),
        f"{PMD}; server_max_window_bits=12",
        P(server_max_window_bits=12),
    ),
    (
        PMD,
        DeflateConfig(server_max_window_bits=12),
        f"{PMD}; server_max_window_bits=12",
        P(server_max_window_bits=12),
    ),
    # 8 is honoured (compressed with a 9-bit zlib window, see deflate.py), not declined
    (
        f"{PMD}; server_max_window_bits=8",
        DEFAULT,
        f"{PMD}; server_max_window_bits=8",
        P(server_max_window_bits=8),
    ),
    (
        f"{PMD}; server_max_window_bits=15",
        DEFAULT,
        f"{PMD}; server_max_window_bits=15",
        P(),
    ),
    # client_max_window_bits: without a value the server may choose; with one, echo or lower
    (f"{PMD}; client_max_window_bits", DEFAULT, PMD, P()),
    (
        f"{PMD}; client_max_window_bits",
        DeflateConfig(client_max_window_bits=9),
        f"{PMD}; client_max_window_bits=9",
        P(client_max_window_bits=9),
    ),
    (
        f"{PMD}; client_max_window_bits=11",
        DEFAULT,
        f"{PMD}; client_max_window_bits=11",
        P(client_max_window_bits=11),
    ),
    (
        f'{PMD}; client_max_window_bits="11"',
        DeflateConfig(client_max_window_bits=9),
        f"{PMD}; client_max_window_bits=9",
        P(client_max_window_bits=9),
    ),
    (
        f"{PMD}; client_max_window_bits=9",
        DeflateConfig(client_max_window_bits=12),
        f"{PMD}; client_max_window_bits=9",
        P(client_max_window_bits=9),
    ),
    # RFC 7692 7.1.2.2: not offered, so it must not be answered; the server inflates with 15
    (PMD, DeflateConfig(client_max_window_bits=9), PMD, P()),
    # every parameter at once
    (
        f"{PMD}; server_no_context_takeover; client_no_context_takeover;"
        " server_max_window_bits=9; client_max_window_bits=8",
        DEFAULT,
        f"{PMD}; server_no_context_takeover; client_no_context_takeover;"
        " server_max_window_bits=9; client_max_window_bits=8",
        P(True, True, 9, 8),
    ),
    # several offers: the first acceptable one wins
    (
        f"{PMD}; server_max_window_bits=16, {PMD}; server_max_window_bits=10, {PMD}",
        DEFAULT,
        f"{PMD}; server_max_window_bits=10",
        P(server_max_window_bits=10),
    ),
    (f"{PMD}; unknown=1, {PMD}", DEFAULT, PMD, P()),
    (f"x-webkit-deflate-frame, foo; bar, {PMD}", DEFAULT, PMD, P()),
    (
        f"{PMD}; server_no_context_takeover, {PMD}",
        DEFAULT,
        f"{PMD}; server_no_context_takeover",
        P(True),
    ),
]


def _keeping_context(config: DeflateConfig) -> DeflateConfig:
    """Return ``config`` with server_no_context_takeover=False where it was left at None."""
    if config.server_no_context_takeover is None:
        return dataclasses.replace(config, server_no_context_takeover=False)
    return config


@pytest.mark.parametrize(("offer", "config", "answer", "agreed"), SERVER_ACCEPTS)
def test_server_accepts(
    offer: str, config: DeflateConfig, answer: str, agreed: DeflateParameters
) -> None:
    assert server_negotiate([offer], _keeping_context(config)) == (answer, agreed)


@pytest.mark.parametrize(("offer", "config", "answer", "agreed"), SERVER_ACCEPTS)
def test_server_declares_no_context_takeover_by_default(
    offer: str, config: DeflateConfig, answer: str, agreed: DeflateParameters
) -> None:
    # RFC 7692 7.1.1.1: a server may answer server_no_context_takeover unasked; by default
    # (None) it does, and the rest of the answer is what the rules above give.
    if SNCT not in answer:
        answer = answer.replace(PMD, f"{PMD}; {SNCT}", 1)
    assert server_negotiate([offer], config) == (
        answer,
        dataclasses.replace(agreed, server_no_context_takeover=True),
    )


def test_server_answers_a_browser_offer_with_server_no_context_takeover() -> None:
    offer = f"{PMD}; client_max_window_bits"  # what Chrome, Firefox and Safari send
    assert server_negotiate([offer], DEFAULT) == (f"{PMD}; {SNCT}", P(True))
    assert server_negotiate([offer], DeflateConfig(server_no_context_takeover=False)) == (PMD, P())


SERVER_DECLINES = [
    "",
    "foo",
    "x-webkit-deflate-frame",
    f"{PMD}; unknown",
    f"{PMD}; __proto__",
    f"{PMD}; constructor=1",
    # duplicates
    f"{PMD}; server_no_context_takeover; server_no_context_takeover",
    f"{PMD}; client_max_window_bits; client_max_window_bits=10",
    f"{PMD}; server_max_window_bits=10; SERVER_MAX_WINDOW_BITS=10",
    # values where none is allowed
    f"{PMD}; server_no_context_takeover=1",
    f'{PMD}; client_no_context_takeover="true"',
    # server_max_window_bits needs a value in 8..15 without leading zeros
    f"{PMD}; server_max_window_bits",
    f"{PMD}; server_max_window_bits=7",
    f"{PMD}; server_max_window_bits=16",
    f"{PMD}; server_max_window_bits=0",
    f"{PMD}; server_max_window_bits=09",
    f"{PMD}; server_max_window_bits=010",
    f"{PMD}; server_max_window_bits=+9",
    f"{PMD}; server_max_window_bits=1e1",
    f'{PMD}; server_max_window_bits="9.0"',
    f"{PMD}; client_max_window_bits=7",
    f"{PMD}; client_max_window_bits=16",
    f"{PMD}; client_max_window_bits=abc",
    f"{PMD}; client_max_window_bits=099999999999999999999",
    # several offers, none acceptable
    f"{PMD}; server_max_window_bits=16, {PMD}; foo, {PMD}; client_max_window_bits=1",
]


@pytest.mark.parametrize("offer", SERVER_DECLINES)
def test_server_declines_without_failing_the_handshake(offer: str) -> None:
    assert server_negotiate([offer], DEFAULT) is None


def test_server_reads_offers_across_several_header_lines() -> None:
    values = [f"foo, {PMD}; server_max_window_bits=20", f"{PMD}; client_max_window_bits=12"]
    assert server_negotiate(values, DEFAULT) == (
        f"{PMD}; {SNCT}; client_max_window_bits=12",
        P(True, client_max_window_bits=12),
    )


def test_server_with_no_header_declines() -> None:
    assert server_negotiate([], DEFAULT) is None


def test_server_bad_syntax_is_a_400() -> None:
    with pytest.raises(InvalidHandshake) as caught:
        server_negotiate([f"{PMD}; server_max_window_bits="], DEFAULT)
    assert caught.value.http_status == 400


# -- client ---------------------------------------------------------------------------------------

CLIENT_OFFERS = [
    (DEFAULT, f"{PMD}; client_max_window_bits"),
    (DeflateConfig(client_max_window_bits=10), f"{PMD}; client_max_window_bits=10"),
    (
        DeflateConfig(server_max_window_bits=8),
        f"{PMD}; server_max_window_bits=8; client_max_window_bits",
    ),
    (
        DeflateConfig(True, True, 12, 11),
        f"{PMD}; server_no_context_takeover; client_no_context_takeover;"
        " server_max_window_bits=12; client_max_window_bits=11",
    ),
]


@pytest.mark.parametrize(("config", "offer"), CLIENT_OFFERS)
def test_client_offer(config: DeflateConfig, offer: str) -> None:
    assert client_offer(config) == offer


CLIENT_ACCEPTS = [
    # (answer, client config, agreed)
    (PMD, DEFAULT, P()),
    ("PERMESSAGE-DEFLATE", DEFAULT, P()),
    (f"{PMD}; server_no_context_takeover", DEFAULT, P(True)),
    (f"{PMD}; client_no_context_takeover", DEFAULT, P(client_no_context_takeover=True)),
    # offered by the client, it holds even if the server does not repeat it
    (PMD, DeflateConfig(client_no_context_takeover=True), P(client_no_context_takeover=True)),
    (f"{PMD}; server_max_window_bits=10", DEFAULT, P(server_max_window_bits=10)),
    (f'{PMD}; server_max_window_bits="10"', DEFAULT, P(server_max_window_bits=10)),
    (
        f"{PMD}; server_max_window_bits=10",
        DeflateConfig(server_max_window_bits=12),
        P(server_max_window_bits=10),
    ),
    (
        f"{PMD}; server_max_window_bits=12",
        DeflateConfig(server_max_window_bits=12),
        P(server_max_window_bits=12),
    ),
    (f"{PMD}; client_max_window_bits=8", DEFAULT, P(client_max_window_bits=8)),
    (
        f"{PMD}; client_max_window_bits=9",
        DeflateConfig(client_max_window_bits=11),
        P(client_max_window_bits=9),
    ),
    # the server ignored our offered limit: we still keep to it (it only binds our compressor)
    (PMD, DeflateConfig(client_max_window_bits=11), P(client_max_window_bits=11)),
    (
        f"{PMD}; server_no_context_takeover; client_no_context_takeover;"
        " server_max_window_bits=9; client_max_window_bits=10",
        DeflateConfig(True, True, 9, 10),
        P(True, True, 9, 10),
    ),
    ("", DEFAULT, None),
    (" , ", DEFAULT, None),
]


@pytest.mark.parametrize(("answer", "config", "agreed"), CLIENT_ACCEPTS)
def test_client_verify_accepts(
    answer: str, config: DeflateConfig, agreed: DeflateParameters | None
) -> None:
    assert client_verify([answer], config) == agreed


def test_client_verify_without_header_means_not_accepted() -> None:
    assert client_verify([], DEFAULT) is None


CLIENT_REJECTS = [
    # (answer, client config, part of the error message)
    ("foo", DEFAULT, "not offered"),
    (f"{PMD}, foo", DEFAULT, "not offered"),
    (f"{PMD}, {PMD}", DEFAULT, "more than once"),
    (f"{PMD}; foo", DEFAULT, "unknown parameter"),
    (f"{PMD}; __proto__=1", DEFAULT, "unknown parameter"),
    (f"{PMD}; server_no_context_takeover; server_no_context_takeover", DEFAULT, "duplicate"),
    (f"{PMD}; server_no_context_takeover=1", DEFAULT, "takes no value"),
    (f"{PMD}; client_no_context_takeover=x", DEFAULT, "takes no value"),
    # window bits in an answer always need a valid value
    (f"{PMD}; server_max_window_bits", DEFAULT, "needs a value"),
    (f"{PMD}; client_max_window_bits", DEFAULT, "needs a value"),
    (f"{PMD}; server_max_window_bits=16", DEFAULT, "8..15"),
    (f"{PMD}; server_max_window_bits=7", DEFAULT, "8..15"),
    (f"{PMD}; client_max_window_bits=08", DEFAULT, "8..15"),
    (f'{PMD}; client_max_window_bits="x"', DEFAULT, "8..15"),
    # answers that do not match the offer
    (PMD, DeflateConfig(server_no_context_takeover=True), "not accepted"),
    (PMD, DeflateConfig(server_max_window_bits=10), "not accepted"),
    (f"{PMD}; server_max_window_bits=11", DeflateConfig(server_max_window_bits=10), "exceeds"),
    (f"{PMD}; client_max_window_bits=11", DeflateConfig(client_max_window_bits=10), "exceeds"),
    # bad syntax
    (f"{PMD};", DEFAULT, "Sec-WebSocket-Extensions"),
]


@pytest.mark.parametrize(("answer", "config", "message"), CLIENT_REJECTS)
def test_client_verify_rejects(answer: str, config: DeflateConfig, message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        client_verify([answer], config)


# -- both sides -----------------------------------------------------------------------------------

window_bits = st.none() | st.integers(8, 15)
configs = st.builds(
    DeflateConfig,
    server_no_context_takeover=st.none() | st.booleans(),
    client_no_context_takeover=st.booleans(),
    server_max_window_bits=window_bits,
    client_max_window_bits=window_bits,
)


@given(client_config=configs, server_config=configs)
def test_client_and_server_agree_on_the_same_parameters(
    client_config: DeflateConfig, server_config: DeflateConfig
) -> None:
    negotiated = server_negotiate([client_offer(client_config)], server_config)
    assert negotiated is not None
    answer, server_agreed = negotiated
    client_agreed = client_verify([answer], client_config)
    assert client_agreed == server_agreed
    # every limit either side asked for is respected
    for config in (client_config, server_config):
        if config.server_max_window_bits is not None:
            assert server_agreed.server_max_window_bits <= config.server_max_window_bits
        assert server_agreed.server_no_context_takeover >= bool(config.server_no_context_takeover)
        assert server_agreed.client_no_context_takeover >= config.client_no_context_takeover
    # a server left at the default (None) always declares its own no context takeover
    if server_config.server_no_context_takeover is None:
        assert server_agreed.server_no_context_takeover
    if client_config.client_max_window_bits is not None:
        assert server_agreed.client_max_window_bits <= client_config.client_max_window_bits
    if server_config.client_max_window_bits is not None:
        assert server_agreed.client_max_window_bits <= server_config.client_max_window_bits


@pytest.mark.parametrize(
    "arguments",
    [
        {"server_max_window_bits": 7},
        {"client_max_window_bits": 16},
        {"compress_level": 10},
        {"compress_level": -1},
        {"mem_level": 0},
        {"mem_level": 10},
        {"min_size": -1},
        {"backend": "zlib-ng"},
        {"backend": ""},
    ],
)
def test_config_rejects_out_of_range_values(arguments: dict[str, int | str]) -> None:
    with pytest.raises(ValueError):
        DeflateConfig(**arguments)  # type: ignore[arg-type]


def test_config_with_backend_isal_needs_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"pip install framewire\[isal\]"):
        DeflateConfig(backend="isal")
    assert DeflateConfig(backend="zlib").backend == "zlib"
    assert DeflateConfig().backend == "auto"


def test_parameters_reject_out_of_range_window_bits() -> None:
    with pytest.raises(ValueError, match="server_max_window_bits=16"):
        DeflateParameters(server_max_window_bits=16)
    with pytest.raises(ValueError, match="client_max_window_bits=7"):
        DeflateParameters(client_max_window_bits=7)


@given(st.lists(st.text(max_size=80), max_size=3))
def test_server_negotiate_never_fails_except_with_a_400(values: list[str]) -> None:
    try:
        result = server_negotiate(values, _keeping_context(DEFAULT))
    except InvalidHandshake as exc:
        assert exc.http_status == 400
    else:
        assert result is None or result[0].startswith(PMD)
