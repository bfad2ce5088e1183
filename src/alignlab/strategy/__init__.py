"""The alignment-difficulty ladder, the technique scorecard, and the strategy models.

Public API:
    LEVELS, BOUNDARIES, TECHNIQUES, Level, Technique, band_of, technique, techniques_at, ladder_dict:
        the ten-level ladder and the techniques that declare their levels (plain data, imported eagerly).
    AllocationConfig, load_allocation_config, allocate, allocate_with_evidence, AllocationError:
        how to split effort across the levels when the true level is unknown.
    load_evidence, update_prior, EvidenceError: documented likelihoods and the prior update.
    ProgressInputs, progress_model, progress_report, needed_growth, parse_deadline, ProgressError:
        will the field finish technical alignment before a deadline.
    collect_evidence, build_scorecard, ladder_evidence, load_references: the technique scorecard.

The models import numpy / scipy, so they load on first use (``alignlab --help`` stays instant).
"""

from alignlab.strategy.ladder import (
    BANDS,
    BOUNDARIES,
    LEVEL_NAMES,
    LEVELS,
    TECHNIQUES,
    Boundary,
    Level,
    Technique,
    band_of,
    ladder_dict,
    level,
    technique,
    techniques_at,
)

_LAZY = {
    "allocate": ("allocate",),
    "allocate_config": ("AllocationConfig", "AllocationError", "load_allocation_config"),
    "evidence": ("EvidenceError", "allocate_with_evidence", "load_evidence", "update_prior"),
    "progress": ("ProgressError", "ProgressInputs", "needed_growth", "parse_deadline", "progress_model",
                 "progress_report"),
    "scorecard": ("build_scorecard", "collect_evidence", "ladder_evidence", "load_references"),
}

__all__ = [
    "BANDS", "BOUNDARIES", "LEVELS", "LEVEL_NAMES", "TECHNIQUES", "Boundary", "Level", "Technique", "band_of",
    "ladder_dict", "level", "technique", "techniques_at", *(n for names in _LAZY.values() for n in names),
]


def __getattr__(name: str):
    import importlib

    for module, names in _LAZY.items():
        if name in names:
            return getattr(importlib.import_module(f"alignlab.strategy.{module}"), name)
    raise AttributeError(name)
