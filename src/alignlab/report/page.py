"""What every HTML report page shares: the template environment, the script hash of its CSP,
clipping of long texts, durations, and the round-robin choice of the items a page shows.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_DIR = Path(__file__).parent / "templates"

MAX_MESSAGE_CHARS = 4000
"""Characters of one message or response shown; longer text is cut with a note."""


def script_hash(script: str) -> str:
    """The CSP hash of an inline script (``sha256-...``)."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def environment() -> jinja2.Environment:
    """The jinja2 environment of the report templates (autoescaped, strict)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def fmt_duration(seconds: Any) -> str:
    """``12.3 s``, ``4 min 05 s`` or ``1 h 02 min``; ``—`` for None."""
    if seconds is None:
        return "—"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def clip(text: Any) -> tuple[str, int]:
    """Text cut to MAX_MESSAGE_CHARS, and how many characters were cut."""
    s = "" if text is None else str(text)
    if len(s) <= MAX_MESSAGE_CHARS:
        return s, 0
    return s[:MAX_MESSAGE_CHARS], len(s) - MAX_MESSAGE_CHARS


def select_shown(items: list[dict], cap: int, key: str = "attack") -> list[dict]:
    """At most ``cap`` items, taken round-robin over groups of ``key`` so every group appears.

    The chosen items keep their original order.

    Args:
        items: hits or examples.
        cap: how many to keep at most.
        key: the field that defines the groups.

    Returns:
        The kept items.
    """
    if len(items) <= cap:
        return list(items)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        groups[str(it.get(key, ""))].append(i)
    queues = [list(reversed(g)) for g in groups.values()]
    chosen: list[int] = []
    while len(chosen) < cap:
        for q in queues:
            if q and len(chosen) < cap:
                chosen.append(q.pop())
    return [items[i] for i in sorted(chosen)]
