"""The alignment-difficulty ladder: ten levels, their bands and boundaries, and alignlab's techniques.

The ladder (seed document 003, after Chris Olah's framing) orders scenarios by which technique would
be *sufficient* to align transformative AI. Later techniques include the earlier ones. Every
alignlab technique declares the level(s) it serves; the lab report puts each measured result there.

This module is plain data and has no heavy imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BANDS: dict[str, tuple[int, int]] = {"easy": (1, 3), "intermediate": (4, 7), "hard": (8, 10)}
"""Band name to its (first, last) level."""


@dataclass(frozen=True)
class Level:
    """One rung of the ladder."""

    number: int
    """1..10."""
    name: str
    """Short name of the technique that would be sufficient at this level."""
    sufficient: str
    """What would suffice, in a sentence."""
    failure_modes: tuple[str, ...]
    """The key sources of risk this level's technique addresses (or, from 8 on, why earlier ones fail)."""

    @property
    def band(self) -> str:
        return band_of(self.number)


@dataclass(frozen=True)
class Boundary:
    """A line between two levels past which the earlier techniques stop being enough."""

    after: int
    """The boundary lies between ``after`` and ``after + 1``."""
    name: str
    meaning: str


LEVELS: tuple[Level, ...] = (
    Level(1, "alignment by default",
          "Scaling models without training them toward risky goals is enough: even superhuman systems do "
          "the commonsense version of what their instructions or rewards imply.",
          ("misuse", "recklessness with training objectives (RL toward badly specified or antisocial goals)")),
    Level(2, "RLHF (human feedback)",
          "Diligent reinforcement learning from human feedback across a wide range of situations, "
          "not just crude instructions or hand-written rewards.",
          ("misspecified rewards / outer misalignment", "crude, underspecified proxies pursued for structural "
           "reasons (production web, 'what failure looks like' part 1)")),
    Level(3, "constitutional AI (AI feedback)",
          "Human feedback augmented with AI-provided feedback from a written constitution to cover edge cases "
          "(RLAIF, constitutional classifiers).",
          ("human feedback too thin and unclear for edge cases",)),
    Level(4, "scalable oversight",
          "Methods that let human-like oversight continue on tasks unaided humans cannot supervise "
          "(AI-assisted evaluation, weak-to-strong supervision, ELK-style approaches).",
          ("humans cannot supervise superhuman tasks",
           "deceptive human-simulators that superhuman behavioural feedback can still remove")),
    Level(5, "scalable oversight with AI research assistance",
          "AIs aligned with levels 1-4 do research on better oversight: debate, amplification, automated "
          "red-teaming and auditing agents.",
          ("oversight methods that humans alone cannot improve fast enough",
           "failures found only by searching at machine scale")),
    Level(6, "oversight with interpretability",
          "Mechanistic or conceptual interpretability inside the (AI-augmented) oversight process: internal "
          "correlates of deception are detected and penalised.",
          ("deception that perfect behavioural feedback cannot remove",)),
    Level(7, "experiments on potentially catastrophic systems",
          "Systems routinely defeat oversight but can be contained, so we run (dangerous) experiments on them, "
          "with model organisms, to learn how misalignment arises.",
          ("systems that alter their internals to evade interpretability and play the training game",)),
    Level(8, "theoretical research",
          "Problems emerge too fast or only in deployment, so experiments are useless or unsafe: we need an "
          "advance understanding of how models generalise.",
          ("a sharp left turn: sudden gains in generality that obsolete earlier techniques",)),
    Level(9, "a new paradigm beyond deep learning",
          "Deep learning systems cannot be aligned even with fundamental changes; a different paradigm is needed.",
          ("deep learning itself cannot be aligned",)),
    Level(10, "impossible",
          "Aligning a superintelligent system is impossible in principle.",
          ("alignment is theoretically impossible or incoherent",)),
)

BOUNDARIES: tuple[Boundary, ...] = (
    Boundary(3, "behavioural safety is insufficient",
             "Past level 3, a strategically aware system that earns perfect human feedback has probably learned a "
             "deceptive human-simulator; behavioural evidence alone cannot rule that out."),
    Boundary(7, "sharp left turn",
             "Past level 7, systems become strategically aware fast enough that experiments on them are unsafe "
             "or useless."),
)

LEVEL_NAMES: dict[int, str] = {lv.number: lv.name for lv in LEVELS}


def band_of(level: int) -> str:
    """'easy' (1-3), 'intermediate' (4-7) or 'hard' (8-10); ValueError outside 1..10."""
    for name, (lo, hi) in BANDS.items():
        if lo <= level <= hi:
            return name
    raise ValueError(f"ladder levels are 1..10, got {level!r}")


def level(number: int) -> Level:
    band_of(number)
    return LEVELS[number - 1]


@dataclass(frozen=True)
class Technique:
    """An alignment technique: what it is, the rungs it serves, and where alignlab has it."""

    id: str
    name: str
    levels: tuple[int, ...]
    """Ladder levels this technique serves (its evidence bears on these rungs)."""
    description: str
    stage: str | None = None
    """The alignlab stage that runs it (``None``: not in alignlab yet)."""
    command: str | None = None
    """How to run it."""
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for lv in self.levels:
            band_of(lv)


TECHNIQUES: tuple[Technique, ...] = (
    Technique("baseline", "baseline refusal of the raw target", (1,),
              "The target's behaviour with no attack, no guard: harmful behaviours asked directly, and the "
              "behavioural suites' multiple-choice answers.", "redteam", "alignlab redteam --attacks direct"),
    Technique("behavioural_evals", "behavioural evaluations", (2, 3, 4),
              "Suites for sycophancy, honesty, power-seeking, self-preservation, misuse and whistleblowing: "
              "the target's measured tendencies after whatever training it had.", "evals", "alignlab eval"),
    Technique("preference_training", "RLHF / preference training", (2,),
              "Training the target on human preference data.", None),
    Technique("constitutional_classifiers", "constitutional classifiers", (3,),
              "Guards trained from a written constitution (plus the red-team's hits) that block harmful inputs "
              "and outputs; measured as the drop in jailbreak success.", "guard",
              "alignlab guard train && alignlab guard eval"),
    Technique("ai_judges", "AI-assisted evaluation (validated judges)", (4,),
              "AI judges that label the target's outputs, checked against hand labels (agreement, kappa).",
              "judge", "alignlab judge validate"),
    Technique("weak_to_strong", "weak-to-strong supervision", (4,),
              "A strong student trained on a weak supervisor's labels; measured as the performance gap recovered.",
              None),
    Technique("automated_redteaming", "automated red-teaming", (5,),
              "An AI attacks the target with templates, transforms and attacker-model searches (PAIR, TAP, "
              "Crescendo); measured as attack success.", "redteam", "alignlab redteam"),
    Technique("debate", "debate", (5,),
              "Two AIs argue; a weaker judge decides. Measured as judge accuracy with and without debate.", None),
    Technique("auditing_agents", "auditing agents", (5, 7),
              "An agent investigates a model with an implanted defect and names its root cause.", None),
    Technique("sae_autointerp", "SAE features labelled by AI (auto-interp)", (6,),
              "Sparse autoencoders split activations into features; an explainer labels them and a scorer checks "
              "the labels on held-out contexts (detection, fuzzing) against neuron and random baselines.",
              "interp", "alignlab interp capture|train-sae|autointerp"),
    Technique("activation_probes", "activation probes and persona directions", (6,),
              "Linear read-outs of the target's own activations: guard probes, persona directions, capping.",
              "interp", "alignlab interp probe / alignlab persona map"),
    Technique("model_organisms", "model organisms with implanted defects", (7,),
              "Deliberately misaligned (e.g. backdoored) models to study how defects arise and are found.", None),
    Technique("theory", "theoretical research", (8,),
              "Understanding generalisation in advance; no experiment in alignlab measures it.", None),
)

TECHNIQUE_BY_ID: dict[str, Technique] = {t.id: t for t in TECHNIQUES}


def technique(tid: str) -> Technique:
    try:
        return TECHNIQUE_BY_ID[tid]
    except KeyError:
        raise KeyError(f"unknown technique {tid!r}; known: {', '.join(TECHNIQUE_BY_ID)}") from None


def techniques_at(level_number: int) -> list[Technique]:
    """Techniques that declare ``level_number`` among their levels."""
    band_of(level_number)
    return [t for t in TECHNIQUES if level_number in t.levels]


def ladder_dict() -> dict:
    """The ladder as JSON-ready data (levels, bands, boundaries, techniques)."""
    return {
        "levels": [{"number": lv.number, "name": lv.name, "sufficient": lv.sufficient,
                    "failure_modes": list(lv.failure_modes), "band": lv.band} for lv in LEVELS],
        "bands": {k: list(v) for k, v in BANDS.items()},
        "boundaries": [{"after": b.after, "name": b.name, "meaning": b.meaning} for b in BOUNDARIES],
        "techniques": [{"id": t.id, "name": t.name, "levels": list(t.levels), "description": t.description,
                        "stage": t.stage, "command": t.command} for t in TECHNIQUES],
    }
