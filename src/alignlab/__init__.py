"""alignlab: a local-first lab for AI-assisted alignment.

The library API (everything here loads on first use, so ``import alignlab`` is instant)::

    import alignlab

    target = alignlab.load_model("embedded:smollm2-135m-instruct")
    result = alignlab.run_redteam(target, attacks="direct,refusal_suppression", limit=4)
    print(result.summary())
    result.save("redteam-out")

Functions: ``load_model``, ``load_behaviors``, ``make_judge``, ``open_workspace``, ``run_redteam``,
``run_eval``, ``train_guard``, ``evaluate_guard``, ``run_lab``. Types: ``Workspace``, ``Behavior``,
``RedteamResult``, ``EvalResult``, ``GuardEvalResult``, ``LabResult``, ``AlignlabError``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "alignlab.models.spec",
    "load_behaviors": "alignlab.data.behaviors",
    "Behavior": "alignlab.data.behaviors",
    "make_judge": "alignlab.judges.harm",
    "Workspace": "alignlab.store.workspace",
    "AlignlabError": "alignlab.errors",
    "RedteamResult": "alignlab.redteam.result",
    "EvalResult": "alignlab.evals.result",
    "GuardEvalResult": "alignlab.guard.result",
    "LabResult": "alignlab.lab.results",
    "open_workspace": "alignlab.api",
    "run_redteam": "alignlab.api",
    "run_eval": "alignlab.api",
    "train_guard": "alignlab.api",
    "evaluate_guard": "alignlab.api",
    "run_lab": "alignlab.api",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'alignlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
