"""The lab config: one YAML file (or the packaged default / quick one) for the whole loop.

Every field has a default, so an empty file is a valid config; a wrong field fails with one line that
names the file and the field (``lab.yaml: redteam.limit: Input should be a valid integer``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alignlab.errors import AlignlabError
from alignlab.guard.data import DataConfig
from alignlab.guard.train import TrainConfig

FILES = Path(__file__).parent / "files"
STAGES = ("redteam", "judges", "guard", "reattack", "evals", "interp", "strategy")
"""The lab's stages in the order they run; the report is built after them."""


class LabConfigError(AlignlabError, ValueError):
    """A lab config that cannot be used; the message is one line naming the file and the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RedteamStage(_Section):
    """The first red-team, on the half of the packaged behaviors guards may learn from."""

    limit: int | None = Field(default=27, ge=1)
    """Pool behaviors, stratified over categories (None: all 81)."""
    attacks: list[str] = ["direct", "persona", "refusal_suppression", "prefix_injection", "fiction", "base64",
                          "many_shot"]
    """Attack names (see ``alignlab redteam --list-attacks``), or one group name: templates, llm, all."""
    budget: int = Field(default=1, ge=1)
    max_new_tokens: int = Field(default=64, ge=1)


class JudgesStage(_Section):
    """Agreement of the red-team judge with the packaged hand labels (held-out split)."""

    split: str = "test"
    """dev, test or all."""


class GuardStage(_Section):
    """The guard trained from the constitution and the red-team's hits."""

    backbone: str = TrainConfig.backbone
    """embed, probe or cascade."""
    constitution: str | None = None
    """A constitution file (None: the packaged default)."""
    generate: int = Field(default=DataConfig.generate_per_side, ge=0)
    """Helper-written requests per category and side (0: the constitution's examples only)."""
    paraphrase: bool = DataConfig.paraphrases
    augment_per_query: int = Field(default=DataConfig.augment_per_query, ge=0)
    response_tokens: int = Field(default=DataConfig.response_tokens, ge=0)
    respond_wrapped: int = Field(default=DataConfig.respond_wrapped, ge=0)
    """Wrapped versions per request that the target answers too (output-classifier data under
    jailbreak templates; a value above ``augment_per_query`` answers every copy)."""
    fpr: float = Field(default=TrainConfig.fpr, gt=0, lt=1)
    cascade_recall: float = Field(default=TrainConfig.cascade_recall, gt=0, le=1)
    pool_behaviors: bool = False
    """Train on every behavior of the packaged pool half too (81 restricted requests and their 81
    benign counterparts), not only those the red-team ran."""
    borderline: Literal["train", "calibrate", "none"] = "train"
    """What the guard does with the borderline set's calibration half (45 alarming-sounding harmless
    prompts; the re-attack measures over-refusal on the other half): ``train`` adds them as
    permitted training examples (hard negatives, also in the out-of-fold threshold calibration),
    ``calibrate`` raises the trained thresholds to block at most ``fpr`` of them
    (``guard calibrate``), ``none`` leaves them out."""


class ReattackStage(_Section):
    """The guarded target attacked again on held-out behaviors (``guard eval``)."""

    limit: int | None = Field(default=18, ge=1)
    """Held-out behaviors, stratified (None: all 81)."""
    attacks: list[str] = ["direct", "persona", "refusal_suppression", "prefix_injection", "fiction", "base64",
                          "many_shot", "authority", "leetspeak"]
    adaptive: list[str] = ["pair"]
    """Attacker-model attacks run against the guarded target (they see its refusals); [] for none."""
    adaptive_limit: int | None = Field(default=9, ge=1)
    """Held-out behaviors the adaptive attacks run on (a stratified subset; None: all of ``limit``)."""
    adaptive_budget: int = Field(default=3, ge=1)
    """Target queries per adaptive attack and behavior."""
    attacker_max_new_tokens: int = Field(default=96, ge=8)
    """Length of each prompt the attacker writes."""
    budget: int = Field(default=1, ge=1)
    max_new_tokens: int = Field(default=64, ge=1)
    latency_samples: int = Field(default=8, ge=0)
    borderline: int | None = Field(default=36, ge=0, le=45)
    """Borderline prompts for over-refusal, from the set's evaluation half, stratified by category
    (None: all 45)."""


class EvalsStage(_Section):
    """Behavioural suites."""

    suites: list[str] = ["all"]
    limit: int | None = Field(default=12, ge=1)
    """Items per suite, stratified (None: every item)."""
    judge: str = "helper"
    """Judge of free-form items: 'helper', 'target', a model spec, or 'none' (then they are unscorable)."""
    max_new_tokens: int = Field(default=64, ge=1)
    max_steps: int = Field(default=3, ge=1)


class InterpStage(_Section):
    """Activations, an SAE, and its features labelled and scored."""

    layer: int | None = None
    """Decoder block (None: the middle one)."""
    tokens: int = Field(default=131072, ge=1024)
    """Tokens captured from the offline default corpus (a twentieth is held out)."""
    transcripts: int = Field(default=32, ge=0)
    """Chat transcripts of the target in the corpus."""
    expansion: int = Field(default=8, ge=1)
    k: int = Field(default=32, ge=1)
    batch_size: int = Field(default=1024, ge=16)
    ce_contexts: int = Field(default=16, ge=0)
    explainer: str = "lexical"
    """'lexical' (no model: the most-marked tokens), 'helper', 'target' or a model spec."""
    scorer: str = "lexical"
    n_latents: int = Field(default=100, ge=1)
    n_neurons: int = Field(default=50, ge=0)
    n_random: int = Field(default=50, ge=0)
    context_tokens: int = Field(default=65536, ge=1024)
    """Tokens the auto-interp windows are drawn from."""


class StrategyStage(_Section):
    """The allocation model (updated with this lab's evidence) and the field-progress model."""

    allocation: str | None = None
    """An allocation config YAML (None: the packaged default)."""
    transfer: float | None = Field(default=None, ge=0, le=1)
    """Tempering weight of the lab's evidence (None: the evidence file's default)."""
    preference_trained: bool | None = None
    """Whether the target was preference-trained (RLHF/DPO), for the sycophancy evidence (None: known
    for the embedded models, else the evidence is not applied)."""
    growth: list[float] = [0.2, 0.5]
    done: float = Field(default=0.1, gt=0, lt=1)
    done_factor: float = Field(default=2.5, ge=1)
    deadline: str = "10"
    samples: int = Field(default=200, ge=0)


class LabConfig(_Section):
    """The whole loop: red-team -> guard -> re-attack -> evals -> SAE + auto-interp -> scorecard -> report."""

    target: str = "embedded:smollm2-135m-instruct"
    """The model under study (any spec; white-box stages need embedded: or hf:)."""
    helper: str = "target"
    """Attacker, guard-data helper and (by default) eval judge: 'target' or a model spec."""
    judge: str = "heuristic"
    """Red-team judge: 'heuristic' or a model spec."""
    seed: int = 0
    batch_size: int = Field(default=32, ge=1)
    stages: list[str] = list(STAGES)
    """Stages to run (in the fixed order); the others are skipped and reported as not run."""
    redteam: RedteamStage = Field(default_factory=RedteamStage)
    judges: JudgesStage = Field(default_factory=JudgesStage)
    guard: GuardStage = Field(default_factory=GuardStage)
    reattack: ReattackStage = Field(default_factory=ReattackStage)
    evals: EvalsStage = Field(default_factory=EvalsStage)
    interp: InterpStage = Field(default_factory=InterpStage)
    strategy: StrategyStage = Field(default_factory=StrategyStage)

    def model_post_init(self, _: Any) -> None:
        bad = [s for s in self.stages if s not in STAGES]
        if bad:
            raise ValueError(f"stages: unknown {bad}; known: {', '.join(STAGES)}")
        if "reattack" in self.stages and "guard" not in self.stages:
            raise ValueError("stages: 'reattack' attacks the guard that the 'guard' stage trains; add 'guard'")
        if self.guard.backbone not in ("embed", "probe", "cascade"):
            raise ValueError(f"guard.backbone: must be embed, probe or cascade, not {self.guard.backbone!r}")


def _error_line(source: str, err: ValidationError) -> str:
    e = err.errors()[0]
    where = ".".join(str(x) for x in e["loc"]) or "(top level)"
    msg = e["msg"].removeprefix("Value error, ")
    return f"{source}: {where}: {msg}"


def config_from_dict(data: Any, source: str = "config") -> LabConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise LabConfigError(f"{source}: the top level must be a mapping of fields (target, redteam, ...)")
    try:
        return LabConfig.model_validate(data)
    except ValidationError as e:
        raise LabConfigError(_error_line(source, e)) from None
    except ValueError as e:
        raise LabConfigError(f"{source}: {e}") from None


def load_lab_config(path: str | Path | None = None, quick: bool = False) -> LabConfig:
    """A lab config from YAML; None gives the packaged default (or, with ``quick``, the quick one)."""
    p = Path(path) if path else FILES / ("lab_quick.yaml" if quick else "lab_default.yaml")
    if path and quick:
        raise LabConfigError("give either --config or --quick, not both")
    from alignlab.config import read_yaml

    return config_from_dict(read_yaml(p, LabConfigError, "lab config"), str(p))
