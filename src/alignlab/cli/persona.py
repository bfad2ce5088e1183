"""``alignlab persona ...``: map (trait directions, assistant axis), drift, cap.

The persona stage has no config dataclass: the options' defaults are the keyword defaults of the
library functions each command calls.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from alignlab.cli.common import (
    Defaults,
    batch_size_option,
    ci,
    console,
    fail,
    judge_option,
    out,
    pct,
    progress,
    quiet_hf,
    target_option,
    user_errors,
)

app = typer.Typer(help="Persona space (white-box): trait directions and the assistant axis, "
                       "persona drift in long conversations, activation capping.",
                  no_args_is_help=True)

PERSONA_MAP = Defaults("alignlab.evals.persona:persona_map")
PERSONA_DRIFT = Defaults("alignlab.evals.drift:persona_drift")
CAPPING = Defaults("alignlab.evals.capping:capping_experiment")
JAILBREAKS = Defaults("alignlab.evals.capping:jailbreak_prompts")
ROWS = "Rows generated together."


def _load(spec: str, batch_size: int):
    from alignlab.models.spec import load_model
    from alignlab.models.whitebox import hf_parts

    with user_errors(FileNotFoundError, ValueError):
        m = load_model(spec, batch_size=batch_size)
        hf_parts(m)
    return m


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{what}: {text!r} is not a comma list of numbers (e.g. -0.5,-0.25,0,0.25,0.5)")


def _num(x, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _range(interval, fmt: str = ".2f") -> str:
    return "" if not interval else f"[{format(interval[0], fmt)}, {format(interval[1], fmt)}]"


@app.command("map")
def map_cmd(
    model: str = target_option("White-box model spec (embedded: or hf:)."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for persona.json and directions.safetensors."),
    layer: int | None = typer.Option(PERSONA_MAP.layer, help="Decoder block to read (default: about 2/3 depth)."),
    personas: Path | None = typer.Option(None, help="personas.json (default: the packaged one)."),
    limit_questions: int | None = typer.Option(None, help="First N extraction and first N test questions."),
    traits: int | None = typer.Option(None, help="First N traits."),
    roles: int | None = typer.Option(None, help="First N roles."),
    max_new_tokens: int = typer.Option(PERSONA_MAP.max_new_tokens, help="Greedy reply length."),
    coefficients: str = typer.Option(",".join(f"{c:g}" for c in PERSONA_MAP.coefficients),
                                     help="Steering strengths, in units of the layer's typical token norm."),
    scorer: str = typer.Option(PERSONA_MAP.scorer, help="Trait scorer for the steering check: embedding (MiniLM) "
                                                        "or judge:MODEL_SPEC (log-likelihood yes/no)."),
    no_steer: bool = typer.Option(not PERSONA_MAP.steer_check, "--no-steer", help="Skip the steering check."),
    batch_size: int = batch_size_option(ROWS),
    seed: int = typer.Option(PERSONA_MAP.seed),
) -> None:
    """Trait directions, role personas and the assistant axis, measured on held-out questions."""
    quiet_hf()
    from rich.table import Table

    from alignlab.evals.persona import persona_map
    from alignlab.evals.persona_data import load_personas

    with user_errors(ValueError):
        ps = load_personas(personas).limited(limit_questions, traits, roles)
    coefs = _floats(coefficients, "--coefficients")
    m = _load(model, batch_size)
    t0 = time.time()
    with progress("persona replies") as on_progress, user_errors(ValueError, RuntimeError):
        res = persona_map(m, ps, layer, max_new_tokens=max_new_tokens, coefficients=coefs, scorer=scorer,
                          steer_check=not no_steer, out_dir=out_dir, on_progress=on_progress, seed=seed)
    t = Table(title=f"trait directions at layer {res['layer']} (test questions, n={res['n_test']} per side)")
    for c in ("trait", "AUROC", "95% CI", "gap (sd)", "AUROC default ctx", "steer slope", "slope CI",
              "scorer AUROC"):
        t.add_column(c)
    for tr in res["traits"]:
        st = tr.get("steer", {})
        t.add_row(tr["name"], _num(tr["auroc"]), _range(tr["auroc_ci"]), _num(tr["gap_sd"]),
                  _num(tr["auroc_default_context"]), _num(st.get("slope"), ".3f"),
                  _range(st.get("slope_ci"), ".3f"), _num(st.get("scorer_auroc")))
    out.print(t)
    ax = res["axis"]
    out.print(f"assistant axis: cos(axis, PC1) {ax['cos_pc1']:.2f} (PC1 sign-aligned); explained variance "
              + ", ".join(f"{100 * v:.0f}%" for v in ax["explained_variance"][:3])
              + f"; held-out roles vs default AUROC {ax['auroc_roles_vs_default']:.2f} "
              f"{_range(ax['auroc_ci'])} (default context {ax['auroc_default_context']:.2f})")
    out.print(f"{time.time() - t0:.0f} s -> {out_dir / 'persona.json'}")


@app.command("drift")
def drift_cmd(
    model: str = target_option("White-box model spec (the one the axis was made on)."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for drift.json and drift_records.jsonl (resumes)."),
    conversations: Path | None = typer.Option(None, help="drift.jsonl (default: the packaged one)."),
    axis: Path | None = typer.Option(None, help="persona.json from persona map (default: OUT/persona.json)."),
    limit: int | None = typer.Option(None, help="At most N conversations, taken in turn from each type."),
    max_turns: int | None = typer.Option(None, help="Keep the first N user turns of each conversation."),
    max_new_tokens: int = typer.Option(PERSONA_DRIFT.max_new_tokens, help="Greedy reply length."),
    chunk: int = typer.Option(PERSONA_DRIFT.chunk,
                              help="Conversations played together (each finished chunk is saved)."),
    batch_size: int = batch_size_option(ROWS),
    seed: int = typer.Option(PERSONA_DRIFT.seed),
) -> None:
    """Track the assistant's position on the assistant axis turn by turn in scripted conversations."""
    quiet_hf()
    from rich.table import Table

    from alignlab.evals.drift import persona_drift
    from alignlab.evals.persona_axis import AxisInfo
    from alignlab.evals.persona_data import load_drift

    with user_errors(ValueError, FileNotFoundError):
        convs = select_conversations(load_drift(conversations), limit, max_turns)
        info = AxisInfo.load(axis or out_dir / "persona.json")
    m = _load(model, batch_size)
    t0 = time.time()
    with progress("drift turns") as on_progress, user_errors(ValueError):
        res = persona_drift(m, info, convs, out_dir, max_new_tokens=max_new_tokens, chunk=chunk,
                            on_progress=on_progress, seed=seed)
    t = Table(title=f"position on the assistant axis ({res['scale']})")
    for c in ("type", "n", "first turn", "last turn", "drift", "95% CI", "vs task_control", "95% CI"):
        t.add_column(c)
    for name, bt in res["by_type"].items():
        t.add_row(name, str(bt["n"]), f"{bt['mean'][0]:.2f}", f"{bt['mean'][-1]:.2f}", f"{bt['drift']:+.2f}",
                  _range(bt["drift_ci"]), _num(bt.get("drift_vs_control"), "+.2f"),
                  _range(bt.get("drift_vs_control_ci")))
    out.print(t)
    for a in res["attractors"]:
        out.print(f"attractor at {a['centre']:.2f}: " + ", ".join(f"{k} {v}" for k, v in a["types"].items()))
    out.print(f"{time.time() - t0:.0f} s ({res['n_resumed']} conversations resumed) -> {out_dir / 'drift.json'}")


def select_conversations(convs, limit: int | None, max_turns: int | None):
    """At most ``limit`` conversations, round-robin over types in file order; turns cut to ``max_turns``."""
    from dataclasses import replace

    if limit is not None and limit < 1 or max_turns is not None and max_turns < 1:
        raise ValueError("--limit and --max-turns must be >= 1")
    by_type: dict[str, list] = {}
    for c in convs:
        by_type.setdefault(c.type, []).append(c)
    picked: list = []
    i = 0
    while len(picked) < (limit or len(convs)) and any(i < len(v) for v in by_type.values()):
        picked += [v[i] for v in by_type.values() if i < len(v)]
        i += 1
    keep = {c.id for c in picked[:limit or len(convs)]}
    return [replace(c, turns=c.turns[:max_turns] if max_turns else c.turns) for c in convs if c.id in keep]


@app.command("cap")
def cap_cmd(
    model: str = target_option("White-box model spec (the one the axis was made on)."),
    axis: Path = typer.Option(..., help="persona.json from persona map."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for capping.json."),
    limit: int = typer.Option(JAILBREAKS.limit, help="Prompts: behaviours stratified by category, templates in turn."),
    judge: str = judge_option("heuristic or a model spec for an LLM judge."),
    personas: Path | None = typer.Option(None, help="personas.json with persona_jailbreaks (default: packaged)."),
    behaviors: Path | None = typer.Option(None, help="Behaviour file (default: the packaged red-team set)."),
    percentile: float = typer.Option(CAPPING.percentile,
                                     help="tau = this percentile of the default assistant's projections."),
    max_new_tokens: int = typer.Option(CAPPING.max_new_tokens, help="Greedy reply length."),
    cap_prompt: bool = typer.Option(CAPPING.cap_prompt, "--cap-prompt/--cap-reply-only",
                                    help="Cap the prompt's positions too, or only generated tokens."),
    batch_size: int = batch_size_option(ROWS),
    seed: int = typer.Option(CAPPING.seed, help="Seed of the behaviour sample and the random control direction."),
) -> None:
    """Persona jailbreaks unmodified, with the projection on the axis capped, and with a random cap."""
    quiet_hf()
    from rich.table import Table

    from alignlab.data import load_behaviors
    from alignlab.evals.capping import capping_experiment, jailbreak_prompts
    from alignlab.evals.persona_axis import AxisInfo
    from alignlab.evals.persona_data import load_personas
    from alignlab.judges.harm import make_judge

    with user_errors(ValueError, FileNotFoundError):
        info = AxisInfo.load(axis)
        prompts = jailbreak_prompts(load_personas(personas), load_behaviors(behaviors), limit, seed)
    m = _load(model, batch_size)
    with user_errors(ValueError, FileNotFoundError):
        j = make_judge(judge)
    t0 = time.time()
    with progress("capping") as on_progress, user_errors(ValueError):
        res = capping_experiment(m, info, prompts, j, percentile=percentile, max_new_tokens=max_new_tokens,
                                 seed=seed, on_progress=on_progress, cap_prompt=cap_prompt, out_dir=out_dir)
    t = Table(title=f"persona jailbreaks (n={res['n']}, judge {res['judge']}, tau {res['tau']:.2f} at "
                    f"the {res['percentile']:g}th percentile)")
    for c in ("condition", "attempted", "95% CI", "harmful", "95% CI", "unscorable"):
        t.add_column(c)
    for name, c in res["conditions"].items():
        t.add_row(name, pct(c["attempted"]["rate"]), ci(c["attempted"]["ci"]), pct(c["harmful"]["rate"]),
                  ci(c["harmful"]["ci"]), str(c["harmful"]["n_unscorable"]))
    out.print(t)
    for name, p in res["paired"].items():
        a = p["attempted"]
        out.print(f"{name}: harmful {_num(p['diff'], '+.3f')} {_range(p['diff_ci'], '+.3f')} "
                  f"p={_num(p['p_value'], '.3f')}; attempted {_num(a['diff'], '+.3f')} "
                  f"{_range(a['diff_ci'], '+.3f')} p={_num(a['p_value'], '.3f')}")
    console.print(f"cap active on {pct(res['cap_active']['axis_cap'])} of positions (axis), "
                  f"{pct(res['cap_active']['random_cap'])} (random)", highlight=False)
    out.print(f"{time.time() - t0:.0f} s -> {out_dir / 'capping.json'}")
