"""The CLI's option defaults are the library's: read from source (fast ``--help``), they must equal
the imported config classes' and functions' defaults, and ``--help`` must not import the stages.

This test fails when a config dataclass or a stage function changes a default in a way the
source reader cannot follow (the CLI would then show a stale value), and when a ``Defaults`` names
a class or function that is not defined where it says.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import subprocess
import sys

import pytest

from alignlab.cli import common, evals, guard, interp, persona, strategy

HOLDERS = [v for m in (common, evals, guard, interp, persona, strategy) for v in vars(m).values()
           if isinstance(v, common.Defaults)]


def _fields(obj) -> list[str]:
    if dataclasses.is_dataclass(obj):
        return [f.name for f in dataclasses.fields(obj)
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
    return [n for n, p in inspect.signature(obj).parameters.items() if p.default is not inspect.Parameter.empty]


@pytest.mark.parametrize("holder", HOLDERS, ids=repr)
def test_defaults_read_from_source_equal_the_imported_ones(holder):
    where = holder._where
    module, _, name = where.partition(":")
    declared = common._declared(module, name)
    assert declared is not None, f"{where}: not defined at the top level of {module} (moved?)"
    obj = getattr(importlib.import_module(module), name)
    checked = 0
    for field in _fields(obj):
        want = common._imported(obj, field)
        if callable(want) and not isinstance(want, type):
            continue  # a factory-made object (e.g. a deadline distribution): compared by import only
        assert common.default(where, field) == want, f"{where}.{field}"
        checked += 1
    assert checked


def test_help_imports_no_stage_torch_or_numpy():
    code = ("import sys; from typer.testing import CliRunner; from alignlab.cli import app; "
            "CliRunner().invoke(app, ['--help']); "
            "print(sorted(m for m in sys.modules if m in ('torch', 'numpy', 'transformers') "
            "or m.startswith(('alignlab.guard', 'alignlab.interp', 'alignlab.evals', 'alignlab.redteam'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
