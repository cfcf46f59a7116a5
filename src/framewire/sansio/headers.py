"""Headers: an ordered, case-insensitive multi-map of HTTP header fields."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["Headers", "split_tokens"]


class Headers:
    """HTTP header fields in arrival order, looked up without regard to case.

    Names and values are ``str``, decoded as latin-1 by the parsers: names are RFC 9110 tokens;
    values are visible ASCII, spaces and tabs, and obs-text (bytes 0x80-0xFF, which browsers use
    for UTF-8 cookies). Repeated fields are kept; ``get_all`` returns every value.
    """

    __slots__ = ("_fields", "_index")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = []
        self._index: dict[str, list[str]] = {}
        append = self._fields.append
        index = self._index
        for name, value in fields:  # add(), without a method call per field
            append((name, value))
            index.setdefault(name.lower(), []).append(value)

    @classmethod
    def from_parsed(cls, fields: list[tuple[str, str]], index: dict[str, list[str]]) -> Headers:
        """Wrap what a parser built, without copying: ``fields`` in arrival order and
        ``index``, every value of each lower-case name (see sansio/field_lines.py)."""
        headers = cls.__new__(cls)
        headers._fields = fields
        headers._index = index
        return headers

    def add(self, name: str, value: str) -> None:
        """Append a field, keeping any earlier field of the same name."""
        self._fields.append((name, value))
        self._index.setdefault(name.lower(), []).append(value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __getitem__(self, name: str) -> str:
        """Return the single value of ``name``; KeyError if absent or repeated."""
        values = self._index[name.lower()]
        if len(values) != 1:
            raise KeyError(f"header {name!r} appears {len(values)} times")
        return values[0]

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of ``name``, or ``default``."""
        values = self._index.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name`` in arrival order (empty list if absent)."""
        return list(self._index.get(name.lower(), ()))

    def items(self) -> list[tuple[str, str]]:
        """Return every (name, value) pair in arrival order, names as received."""
        return list(self._fields)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(n.lower(), v) for n, v in self._fields] == [
            (n.lower(), v) for n, v in other._fields
        ]

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"

    def serialize(self) -> bytes:
        """Return the fields as ``Name: value\\r\\n`` lines (no final blank line).

        Raises:
            ValueError: a name is not a token, or a value holds CR, LF, NUL or another control
                character (it would inject header fields).
        """
        # Imported here: the encoder's module imports this one (through http11_grammar).
        from framewire.sansio.http11_encode import py_encode_fields

        return py_encode_fields(self._fields)


def split_tokens(values: Iterable[str]) -> list[str]:
    """Split comma-separated token-list header values into lower-case tokens.

    ``["keep-alive, Upgrade"]`` -> ``["keep-alive", "upgrade"]``; empty elements are dropped
    (RFC 9110 5.6.1 allows them). Linear in the input length.
    """
    tokens: list[str] = []
    for value in values:
        for part in value.split(",") if "," in value else (value,):  # nearly always one token
            token = part.strip(" \t").lower()
            if token:
                tokens.append(token)
    return tokens
