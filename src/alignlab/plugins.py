"""Loading plugins: modules that register attacks, judges, suites or backends when imported.

A plugin is any importable module whose top level calls ``@register_attack``,
``@register_judge(NAME)``, ``register_suite(...)`` or ``@register_backend(PREFIX)``. From Python,
importing it is enough. The command line loads, before it parses any option:

* every entry point of the group ``alignlab.plugins`` of the installed distributions (a plugin
  package declares ``[project.entry-points."alignlab.plugins"] NAME = "its.module"``);
* every module named in ``ALIGNLAB_PLUGINS`` (comma-separated), e.g. for a file on ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib
import os
from importlib import metadata

from alignlab.errors import AlignlabError

ENTRY_POINT_GROUP = "alignlab.plugins"
ENV_VAR = "ALIGNLAB_PLUGINS"

_loaded: set[str] = set()


def load_plugins(extra: str | None = None) -> list[str]:
    """Import every plugin once; returns the module names loaded by this call.

    Args:
        extra: a comma-separated list of modules (default: ``$ALIGNLAB_PLUGINS``).

    Raises:
        AlignlabError: naming the plugin that failed to import and why.
    """
    names = [ep.value.split(":")[0] for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
    names += [n.strip() for n in (extra if extra is not None else os.environ.get(ENV_VAR, "")).split(",")
              if n.strip()]
    loaded = []
    for name in dict.fromkeys(names):
        if name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any failure of a plugin's import is reported as one line
            raise AlignlabError(f"plugin {name!r} (from {ENV_VAR} or the {ENTRY_POINT_GROUP!r} entry points) "
                                f"failed to import: {type(e).__name__}: {e}") from None
        _loaded.add(name)
        loaded.append(name)
    return loaded
