"""Behavioural evaluations: suites of items, white-box and judged scoring, runs with CIs."""

from alignlab.evals.items import (
    SUITES,
    EvalItem,
    ItemError,
    item_from_dict,
    load_anthropic_evals,
    load_items,
    load_suite,
    resolve_items,
)
from alignlab.evals.judge import EvalJudge, RubricJudge, make_eval_judge
from alignlab.evals.runner import run_eval, score_items, suite_metrics
from alignlab.evals.score import EvalConfig

__all__ = [
    "SUITES",
    "EvalConfig",
    "EvalItem",
    "EvalJudge",
    "ItemError",
    "RubricJudge",
    "item_from_dict",
    "load_anthropic_evals",
    "load_items",
    "load_suite",
    "make_eval_judge",
    "resolve_items",
    "run_eval",
    "score_items",
    "suite_metrics",
]
