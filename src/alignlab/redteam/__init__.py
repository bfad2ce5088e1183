"""Automated red-teaming: attacks on a target, judged, with behavior-level ASR and 95% CIs.

Public API:
    run_redteam, RedteamConfig, RedteamResult: run (or resume) behaviors x attacks; typed results.
    get_attack, get_attacks, list_attacks, register_attack, ATTACKS: the attack library and its
        registry (a plugin's ``@register_attack`` class is usable by name everywhere).
    Attack, AttackContext, AttackResult, Call: the protocol an attack follows.
    compute_metrics: ASR, attempted compliance and over-refusal from stored records.
"""

from alignlab.redteam.attacks import ATTACKS, get_attack, get_attacks, list_attacks, register_attack
from alignlab.redteam.engine import RedteamConfig, run_redteam
from alignlab.redteam.metrics import compute_metrics
from alignlab.redteam.result import RedteamResult
from alignlab.redteam.types import Attack, AttackContext, AttackResult, Call

__all__ = [
    "ATTACKS", "Attack", "AttackContext", "AttackResult", "Call", "RedteamConfig", "RedteamResult",
    "compute_metrics", "get_attack", "get_attacks", "list_attacks", "register_attack", "run_redteam",
]
