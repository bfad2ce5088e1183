"""The attack library: template transforms, encodings, attacker-LLM attacks and Crescendo.

Every attack follows the ``Attack`` protocol of ``alignlab.redteam.types``: ``name``, ``kind``
(``template`` | ``llm`` | ``multiturn``), a one-line ``description``, ``needs_attacker``, and
``stream(behavior, ctx)``, a generator that yields model ``Call``s and returns an
``AttackResult`` listing every target query it made.

Example:
    >>> from alignlab.redteam.attacks import get_attacks
    >>> [a.name for a in get_attacks("direct,base64")]
    ['direct', 'base64']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from alignlab.redteam.attacks.encodings import (
    Base64Attack,
    EncodingAttack,
    LeetspeakAttack,
    Rot13Attack,
    from_base64,
    from_leetspeak,
    rot13,
    to_base64,
    to_leetspeak,
)
from alignlab.redteam.attacks.iterative import PAIR, TAP, parse_attacker_output
from alignlab.redteam.attacks.multiturn import Crescendo
from alignlab.redteam.attacks.templates import (
    Authority,
    Direct,
    Distractors,
    Fiction,
    FormatAttack,
    ManyShot,
    PayloadSplit,
    Persona,
    PrefixInjection,
    RefusalSuppression,
    SystemOverride,
    TemplateAttack,
    score_of,
    target_string,
)
from alignlab.redteam.types import Attack

F = TypeVar("F", bound=Callable[..., Attack])

GROUPS = {"all": None, "templates": "template", "llm": "llm", "multiturn": "multiturn"}
"""Names that stand for a group of attacks in ``get_attacks`` (``None``: every attack)."""


ATTACKS: dict[str, Callable[..., Attack]] = {}
"""Every attack by name; calling a factory with keyword parameters builds the attack."""


def register_attack(factory: F) -> F:
    """Register an attack class (or factory) under its ``name``; use it as a class decorator.

    The class follows the ``Attack`` protocol (``name``, ``kind``, ``description``, ``stream``) and
    builds with no arguments. After registration ``get_attack(name)``, ``--attacks name`` on the
    command line and the lab config's attack lists know it; a plugin needs no edit of alignlab.

    Raises:
        ValueError: when the name is taken by another attack or is a group name.
    """
    name = str(getattr(factory, "name", "")).strip().lower()
    if not name or name in GROUPS:
        raise ValueError(f"attack {factory!r} needs a 'name' that is not a group ({', '.join(GROUPS)})")
    if name in ATTACKS and ATTACKS[name] is not factory:
        raise ValueError(f"an attack named {name!r} is already registered")
    ATTACKS[name] = factory
    return factory


for _factory in (Direct, Persona, RefusalSuppression, PrefixInjection, Fiction, PayloadSplit, Base64Attack,
                 Rot13Attack, LeetspeakAttack, ManyShot, SystemOverride, Authority, Distractors, PAIR, TAP,
                 Crescendo):
    register_attack(_factory)


def _known() -> str:
    return ", ".join([*ATTACKS, *GROUPS])


def get_attack(name: str, **params: Any) -> Attack:
    """Build one attack by name, passing ``params`` to its constructor.

    Raises:
        ValueError: for an unknown name (the message lists the known ones) or bad parameters.
    """
    key = name.strip().lower()
    if key not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known: {_known()}")
    try:
        return ATTACKS[key](**params)
    except TypeError as e:
        raise ValueError(f"attack {key!r}: bad parameters {sorted(params)}: {e}") from e


def get_attacks(spec: str) -> list[Attack]:
    """Attacks from a comma-separated list of names and groups (``all``, ``templates``, ``llm``,
    ``multiturn``), in registry order within a group, without duplicates.

    Raises:
        ValueError: for an unknown name, listing the known ones, or an empty spec.
    """
    names: list[str] = []
    for part in (p.strip().lower() for p in spec.split(",")):
        if not part:
            continue
        if part in GROUPS:
            kind = GROUPS[part]
            names += [n for n, f in ATTACKS.items() if kind is None or f().kind == kind]
        elif part in ATTACKS:
            names.append(part)
        else:
            raise ValueError(f"unknown attack {part!r}; known: {_known()}")
    if not names:
        raise ValueError(f"no attacks named in {spec!r}; known: {_known()}")
    return [get_attack(n) for n in dict.fromkeys(names)]


def list_attacks() -> list[dict[str, Any]]:
    """One row per attack: name, kind, description, needs_attacker."""
    rows = []
    for name, factory in ATTACKS.items():
        attack = factory()  # every factory has defaults; building one is cheap
        rows.append({"name": name, "kind": attack.kind, "description": attack.description,
                     "needs_attacker": bool(getattr(attack, "needs_attacker", False))})
    return rows


__all__ = [
    "ATTACKS", "GROUPS", "get_attack", "get_attacks", "list_attacks", "register_attack",
    "TemplateAttack", "FormatAttack", "EncodingAttack",
    "Direct", "Persona", "RefusalSuppression", "PrefixInjection", "Fiction", "PayloadSplit",
    "Base64Attack", "Rot13Attack", "LeetspeakAttack", "ManyShot", "SystemOverride", "Authority",
    "Distractors", "PAIR", "TAP", "Crescendo",
    "to_base64", "from_base64", "rot13", "to_leetspeak", "from_leetspeak",
    "parse_attacker_output", "score_of", "target_string",
]
