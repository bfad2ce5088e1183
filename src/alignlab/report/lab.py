"""The lab report (placeholder until the full page lands)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any


def render_lab_report(results: dict[str, Any]) -> str:
    return "<!doctype html><html><body><pre>" + html.escape(json.dumps(results, indent=1, default=str)) + "</pre></body></html>"


def write_lab_report(results: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_lab_report(results))
    return p
