"""Make what comes out of the sandbox storable: any database, any driver, any size.

Everything a job leaves behind is hostile text: lone surrogates (``"\\ud800"`` in JSON) cannot be
encoded as UTF-8, PostgreSQL refuses NUL in TEXT and ``\\u0000`` in JSON, control characters garble
pages and logs, NaN is not JSON, and a megabyte message fills a row. These helpers turn such values into
plain, bounded text and JSON before they reach the database, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import math
import re

REPLACEMENT = "\ufffd"
# C0 controls except tab and newline, DEL and the C1 controls; \r is dropped (CRLF logs become LF)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
MAX_DEPTH = 6


def storable_text(value: object, limit: int, *, keep: str = "head") -> str:
    """``value`` as text without surrogates or control characters, at most ``limit`` characters.

    ``keep="tail"`` keeps the end instead (a traceback's last lines matter most), ``keep="ends"`` the first
    quarter and the end (a log: how it started, and how it ended); a cut is marked.
    """
    text = value if isinstance(value, str) else str(value)
    text = _SURROGATE.sub(REPLACEMENT, text)
    text = _CONTROL.sub(lambda match: "" if match.group() == "\r" else REPLACEMENT, text)
    if len(text) <= limit:
        return text
    if limit <= 1:
        return text[:limit]
    if keep == "ends" and limit > 200:
        marker = f"\n[... {len(text) - limit} characters cut ...]\n"
        head = limit // 4
        return text[:head] + marker + text[-(limit - head - len(marker)) :]
    return "…" + text[-(limit - 1) :] if keep == "tail" else text[: limit - 1] + "…"


def optional_text(value: object, limit: int, *, keep: str = "head") -> str | None:
    return None if value is None else storable_text(value, limit, keep=keep)


def storable_json(value: object, *, text_limit: int = 300, max_items: int = 1000, depth: int = 0) -> object:
    """A copy of JSON-like data that every database stores: clean bounded strings, finite numbers, bounded size.

    Keys become clean strings; NaN and infinities become None; anything nested deeper than MAX_DEPTH or of
    another type becomes its short text.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return storable_text(value, text_limit)
    if depth >= MAX_DEPTH:
        return storable_text(repr(value), text_limit)
    options = {"text_limit": text_limit, "max_items": max_items, "depth": depth + 1}
    if isinstance(value, dict):
        items = list(value.items())[:max_items]
        return {storable_text(key, 80): storable_json(item, **options) for key, item in items}
    if isinstance(value, list | tuple):
        return [storable_json(item, **options) for item in list(value)[:max_items]]
    return storable_text(repr(value), text_limit)
