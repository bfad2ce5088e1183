"""Reading the YAML files configs come from, with one-line errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def read_yaml(path: str | Path, error: type[Exception] = ValueError, what: str = "file") -> Any:
    """The parsed YAML at ``path``; a missing file or bad YAML raises ``error`` with one line.

    Args:
        path: the file.
        error: the exception class to raise (the caller's ``...Error``).
        what: what the file is, for the message ("lab config", "references").
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise error(f"{p}: file not found (the {what})")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "parse error"
        raise error(f"{p}: not valid YAML: {first}") from None
