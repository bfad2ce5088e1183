"""Constitutional classifiers: constitution → synthetic data → guards → GuardedModel → re-attack.

Public API:
    load_constitution, Constitution, ConstitutionError: the written rules.
    build_dataset, DataConfig, behavior_split, assert_disjoint, LeakageError: training data.
    train_guard, TrainConfig, build_and_train: fit and calibrate classifier heads.
    calibrate_guard: raise a trained guard's thresholds on held-apart benign prompts.
    Guard, load_guard: a trained guard directory.
    GuardedModel: a target wrapped by a guard (itself a ChatModel).
    run_guard_eval, GuardEvalConfig, GuardEvalResult: ASR and over-refusal with and without the guard.
"""


from alignlab.data.splits import behavior_split, borderline_split, load_borderline
from alignlab.guard.calibrate import calibrate_guard
from alignlab.guard.constitution import Constitution, ConstitutionError, load_constitution
from alignlab.guard.data import (
    DataConfig,
    Example,
    LeakageError,
    assert_disjoint,
    build_dataset,
    examples_from_run,
)
from alignlab.guard.evaluate import GuardEvalConfig, run_guard_eval
from alignlab.guard.guard import Decision, Guard, load_guard
from alignlab.guard.guarded import GuardedModel
from alignlab.guard.result import GuardEvalResult
from alignlab.guard.train import TrainConfig, build_and_train, train_guard

__all__ = [
    "Constitution", "ConstitutionError", "DataConfig", "Decision", "Example", "Guard",
    "GuardEvalConfig", "GuardEvalResult", "GuardedModel", "LeakageError", "TrainConfig", "assert_disjoint",
    "behavior_split", "borderline_split", "build_and_train", "calibrate_guard", "build_dataset", "examples_from_run",
    "load_borderline",
    "load_constitution", "load_guard", "run_guard_eval", "train_guard",
]
