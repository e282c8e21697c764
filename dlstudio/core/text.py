"""Text from files, folders and users made safe to show: escaped control characters, cut long values.

Class names, file names, node names and values quoted from a file reach a terminal, a
one-line message or generated code. A newline there forges extra output lines, an ANSI
escape sequence recolours or rewrites the terminal, a bidirectional override shows text
in another order than it runs, and a 3 MB value buries the message. No torch, no Qt.
"""

from __future__ import annotations

import math
import reprlib
import unicodedata
from typing import Any

# Unicode's explicit bidirectional formatting characters: they reorder how the text around
# them is shown ("Trojan Source"), so nothing a person reads may carry them unescaped.
# The embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) are refused in node names;
# the marks (U+061C, U+200E, U+200F) only reorder neutral characters and are escaped where printed.
BIDI_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
BIDI_CONTROLS = BIDI_OVERRIDES | frozenset("\u061c\u200e\u200f")

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNSAFE_CATEGORIES = ("Cc", "Zl", "Zp", "Cs")

# What a message may quote of a value, in characters.
QUOTE_LIMIT = 60


def is_unsafe(char: str) -> bool:
    """True for a character that must not reach a terminal or a one-line message as it is."""
    return char in BIDI_CONTROLS or unicodedata.category(char) in _UNSAFE_CATEGORIES


def escape_char(char: str) -> str:
    """The Python escape of one character: ``\\n``, ``\\x1b``, ``\\u202e``, ``\\U000e0001``."""
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: Any) -> str:
    """``text`` (or ``str(value)``) with control characters, line breaks and bidi overrides escaped.

    ``"a\\nb\\x1b[31m"`` -> ``a\\nb\\x1b[31m`` shown literally, on one line. A file name's
    undecodable bytes (surrogate escapes, ``\\udcff``) show as the byte (``\\xff``),
    so that printing never fails to encode. Other text (accents, CJK, emoji) is kept.
    """
    text = text if isinstance(text, str) else str(text)
    if text.isprintable():  # the common case: nothing to escape (it is stricter than is_unsafe)
        return text
    parts = []
    for char in text:
        if not is_unsafe(char):
            parts.append(char)
        elif 0xDC80 <= ord(char) <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
            parts.append(f"\\x{ord(char) - 0xDC00:02x}")
        else:
            parts.append(escape_char(char))
    return "".join(parts)


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)] + "..."


def digits(number: int) -> int:
    """How many decimal digits ``abs(number)`` has, without writing out a huge number."""
    number = abs(number)
    if number.bit_length() < 10_000:  # well within Python's limit on int-to-text conversion
        return len(str(number))
    return int(number.bit_length() * math.log10(2)) + 1  # exact enough for a message


def number_text(number: float) -> str:
    """A number for a message: ``4096``, ``0.001``, ``1e+308``, ``a 400-digit number``."""
    if isinstance(number, int) and not isinstance(number, bool):
        return str(number) if digits(number) <= 15 else f"a {digits(number)}-digit number"
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:g}"


class _ShortRepr(reprlib.Repr):
    """``reprlib`` with a few items of each list and dict, and huge ints by their size."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.maxstring = self.maxother = max(limit, 8)
        self.maxlevel = 3
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = 6

    def repr_int(self, x: int, level: int) -> str:
        return str(x) if digits(x) <= 30 else f"<{digits(x)}-digit number>"


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for a message: at most ``limit`` characters, on one line, printable.

    Huge values are cut before they are written out (a 3 MB string, a list of a million
    items, a 400-digit number). ``repr`` escapes control characters; bidi overrides are
    escaped too.
    """
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return str(value) if digits(value) <= limit else f"a {digits(value)}-digit number"
    try:
        text = _ShortRepr(limit).repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"
    return shorten(printable(text), limit)
