"""Behavioural evaluations: suites of items, white-box and judged scoring, runs with CIs.

Persona space lives in submodules imported on use (they need numpy and torch):
``alignlab.evals.persona`` (persona_map, AxisInfo), ``alignlab.evals.drift`` (persona_drift),
``alignlab.evals.capping`` (capping_experiment), ``alignlab.evals.generate`` (generate_eval),
``alignlab.evals.inspect_log`` (write_inspect_log).
"""

from alignlab.evals.compare import compare_records, compare_runs
from alignlab.evals.items import (
    SUITES,
    EvalItem,
    ItemError,
    item_from_dict,
    load_anthropic_evals,
    load_items,
    load_suite,
    register_suite,
    resolve_items,
)
from alignlab.evals.result import EvalResult
from alignlab.evals.runner import run_eval, score_items, suite_metrics
from alignlab.evals.score import EvalConfig
from alignlab.judges.rubric import EvalJudge, RubricJudge, make_eval_judge

__all__ = [
    "SUITES",
    "EvalConfig",
    "EvalItem",
    "EvalResult",
    "EvalJudge",
    "ItemError",
    "RubricJudge",
    "compare_records",
    "compare_runs",
    "item_from_dict",
    "load_anthropic_evals",
    "load_items",
    "load_suite",
    "register_suite",
    "make_eval_judge",
    "resolve_items",
    "run_eval",
    "score_items",
    "suite_metrics",
]
