"""The one base class of the errors alignlab raises on bad input or an unmet precondition.

Every such error carries a one-line message that names the file, row, field or setting and says how
to fix it; the command line prints that line (``error: ...``) and exits 2, with no traceback. Each
subclass also keeps the builtin base it always had (``ValueError``, ``KeyError``, ...), so code that
catches those still works.
"""

from __future__ import annotations


class AlignlabError(Exception):
    """Bad input or an unmet precondition; ``str(e)`` is the one line a user reads."""

    def __str__(self) -> str:
        # KeyError quotes its message; no alignlab error should.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


__all__ = ["AlignlabError"]
