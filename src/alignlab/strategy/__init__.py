"""The alignment-difficulty ladder, the technique scorecard, and strategy models.

Public API:
    LEVELS, BOUNDARIES, TECHNIQUES, Level, Technique, band_of, technique, techniques_at, ladder_dict:
        the ten-level ladder and the techniques that declare their levels.
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

__all__ = [
    "BANDS", "BOUNDARIES", "LEVELS", "LEVEL_NAMES", "TECHNIQUES", "Boundary", "Level", "Technique", "band_of",
    "ladder_dict", "level", "technique", "techniques_at",
]
