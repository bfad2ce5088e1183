"""Judges: the red-team harm judges, the eval rubric judges, and their agreement with hand labels.

Public API:
    Verdict, JudgeItem, Judge: what a judge sees and decides (``None`` fields are unscorable).
    HeuristicJudge, RefusalJudge, LLMJudge, is_refusal: refused / attempted / harmful judges.
    make_judge, register_judge, JUDGES: a judge from a name or a model spec; plugins register names.
    RubricJudge, EvalJudge, make_eval_judge: the behavioural evals' rubric judge and misuse judge.
    load_labels, validate_judge: agreement (accuracy, kappa, precision, recall) with hand labels.
"""

from alignlab.judges.harm import JUDGES, HeuristicJudge, LLMJudge, RefusalJudge, is_refusal, make_judge, register_judge
from alignlab.judges.rubric import EvalJudge, RubricJudge, make_eval_judge
from alignlab.judges.types import Judge, JudgeItem, Verdict
from alignlab.judges.validate import load_labels, validate_judge

__all__ = [
    "JUDGES", "EvalJudge", "HeuristicJudge", "Judge", "JudgeItem", "LLMJudge", "RefusalJudge", "RubricJudge",
    "Verdict", "is_refusal", "load_labels", "make_eval_judge", "make_judge", "register_judge", "validate_judge",
]
