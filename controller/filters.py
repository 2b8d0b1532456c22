"""Search filters that name models exactly, written for how MLflow's server really parses them.

MLflow's search grammar has two ways to name a model, parsed differently (mlflow/utils/search_utils.py):
- `name IN (...)`: the list is read with Python's literal rules (ast.literal_eval), so backslashes are
  escapes; any name can be written, every awkward character as an escape. Servers before 2.22 refuse lists.
- `name = '...'`: the text between the quotes is taken as it is, with no escapes at all; so a name holding
  both quote characters cannot be written. `name LIKE` with `_` (any one character) in their place finds it,
  among look-alikes that the caller drops by exact name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MAX_CHARS = 3000  # keeps the GET query string well under servers' URL limits
_PLAIN = re.compile(r"[A-Za-z0-9 _.\-/%:@+#=~^&*!?<>|]")
_UNSAFE_IN_LIKE = re.compile(r"""['"\\]""")  # also: PostgreSQL's LIKE takes a backslash as its escape


def in_lists(names: list[str]) -> Iterator[str]:
    """`name IN (...)` filters covering all names, each short enough for a URL."""
    chunk: list[str] = []
    size = 0
    for name in names:
        quoted = literal(name)
        if chunk and size + len(quoted) > MAX_CHARS:
            yield f"name IN ({', '.join(chunk)})"
            chunk, size = [], 0
        chunk.append(quoted)
        size += len(quoted) + 2
    if chunk:
        yield f"name IN ({', '.join(chunk)})"


def literal(name: str) -> str:
    """A Python string literal that reads back as `name`: plain characters as they are, any other as an escape.

    Escapes keep quotes, backslashes and parentheses out of the text, so that neither the server's SQL
    tokenizer nor literal_eval can take them for anything but characters of the name.
    """
    return "'" + "".join(c if _PLAIN.fullmatch(c) else _escape(c) for c in name) + "'"


def equals(name: str) -> str:
    """One condition naming `name` without a list: exact where the grammar allows, else a LIKE superset."""
    for quote in ("'", '"'):
        if quote not in name:
            return f"name = {quote}{name}{quote}"
    return f"name LIKE '{_UNSAFE_IN_LIKE.sub('_', name)}'"


def starting(prefix: str) -> str:
    """Names that start like `prefix`: a LIKE superset (its quotes and backslashes match any one character)."""
    return f"name LIKE '{_UNSAFE_IN_LIKE.sub('_', prefix)}%'"


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
