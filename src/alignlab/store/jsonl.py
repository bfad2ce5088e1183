"""Append-only JSONL files that long runs resume from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_resumable_jsonl(path: str | Path, repair: bool = False) -> list[tuple[int, Any]]:
    """``(row number, record)`` of a JSONL file written one record at a time.

    A torn last line (a write cut short by a kill) is dropped, and with ``repair`` removed from the
    file so later appends start on a clean line; a bad line anywhere else raises ``ValueError``
    naming the row. A missing file reads as empty.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows, good = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
            good.append(line)
        except json.JSONDecodeError:
            if n == len(lines):
                break
            raise ValueError(f"{path}, row {n}: not valid JSON; delete the row (or the file) and rerun") from None
    if repair and len(good) != sum(1 for x in lines if x.strip()):
        path.write_text("".join(x + "\n" for x in good), encoding="utf-8")
    return rows
