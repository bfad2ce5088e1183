"""``alignlab interp ...``: capture, train-sae, eval-sae, autointerp, probe, steer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from alignlab.cli.common import (
    AUTOINTERP,
    CAPTURE,
    DEFAULT_TARGET,
    SAE_TRAIN,
    Defaults,
    console,
    fail,
    out,
    progress,
    quiet_hf,
    save,
    target_option,
    user_errors,
)

app = typer.Typer(help="Interpretability: capture activations, train and evaluate SAEs, label "
                       "features, probes and steering.", no_args_is_help=True)

EVALUATE_SAE = Defaults("alignlab.interp.pipeline:evaluate_sae")
AUTOINTERP_SAE = Defaults("alignlab.interp.pipeline:autointerp_sae")
PROBES = Defaults("alignlab.interp.probes:train_probes")
CORPUS = Defaults("alignlab.interp.corpus:open_corpus")


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{what}: {text!r} is not a comma list of integers (e.g. 6,15,24)")


def _model(spec: str, dtype: str = "float32"):
    from alignlab.models.spec import load_model

    with user_errors(FileNotFoundError, ValueError):
        return load_model(spec, dtype=dtype)


def _store(path: Path):
    from alignlab.interp.acts import ActivationStore

    with user_errors():
        return ActivationStore(path)


def _sae_dirs(path: Path) -> list[Path]:
    """An SAE directory, or a train-sae output holding one per activation key."""
    if (path / "cfg.json").exists():
        return [path]
    found = sorted(p.parent for p in path.glob("*/cfg.json"))
    if not found:
        fail(f"{path}: no cfg.json in it or in its sub-folders; give the --out of `alignlab interp train-sae`")
    return found


@app.command("capture")
def capture_cmd(
    model: str = target_option("Model spec (white-box: embedded: or hf:)."),
    layers: str = typer.Option(..., help="Comma list of decoder blocks, e.g. 6,15,24 (residual stream after each)."),
    corpus: str = typer.Option(CAPTURE.corpus, help="default (offline mix), a .txt/.jsonl[:FIELD] file, a folder, "
                                                    "or hf:NAME[:CONFIG][@SPLIT]."),
    tokens: int = typer.Option(CAPTURE.tokens, help="Token budget."),
    out_dir: Path = typer.Option(..., "--out", help="Activation store folder (resumes when re-run)."),
    sites: str = typer.Option(",".join(CAPTURE.sites), help="resid and/or mlp_out, comma separated."),
    dtype: str = typer.Option(CAPTURE.dtype, help="Storage dtype: float16, bfloat16, float32."),
    model_dtype: str = typer.Option("float32", help="Dtype the model computes in (bfloat16 is ~2x faster "
                                                    "on CPUs with AVX512-BF16)."),
    context_len: int = typer.Option(CAPTURE.context_len, help="Tokens per context."),
    batch_size: int = typer.Option(CAPTURE.batch_size, help="Contexts per forward pass."),
    transcripts: int = typer.Option(CORPUS.n_transcripts,
                                    help="Default corpus: chat transcripts the model writes first."),
) -> None:
    """Capture several layers' activations in one forward pass into sharded safetensors."""
    quiet_hf()
    from alignlab.interp.capture import CaptureConfig, capture
    from alignlab.interp.corpus import open_corpus

    m = _model(model, model_dtype)
    cfg = CaptureConfig(layers=tuple(_ints(layers, "--layers")), sites=tuple(s.strip() for s in sites.split(",")),
                        tokens=tokens, context_len=context_len, batch_size=batch_size, dtype=dtype,
                        corpus=corpus, extra={"model_spec": model, "model_dtype": model_dtype})
    with progress("transcripts") as on_progress, user_errors(ValueError):
        docs = open_corpus(corpus, model=m, workdir=out_dir, n_transcripts=transcripts,
                           progress=lambda d, t: on_progress("transcripts", d, t))
        store = capture(m, docs, out_dir, cfg, progress=lambda d, t: on_progress("tokens", d, t))
    meta = store.meta
    out.print(f"{meta['n_tokens']:,} tokens x {', '.join(store.keys())} ({meta['dtype']}) at "
              f"{meta.get('capture_tokens_per_s')} tokens/s; by source: "
              + ", ".join(f"{k} {v:,}" for k, v in meta.get("tokens_by_source", {}).items()))
    if not meta["complete"]:
        console.print("[yellow]the corpus ran out before the token budget[/]")
    out.print(f"-> {out_dir}")


@app.command("train-sae")
def train_sae_cmd(
    acts: Path = typer.Option(..., help="Activation store (the --out of capture)."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for one SAE per key (resumes when re-run)."),
    arch: str = typer.Option(SAE_TRAIN.arch, help="topk or batchtopk (saved as jumprelu)."),
    width: int | None = typer.Option(SAE_TRAIN.width, help="Latents (default: expansion x d_model)."),
    expansion: int = typer.Option(SAE_TRAIN.expansion, help="Latents per input dimension when --width is not given."),
    k: int = typer.Option(SAE_TRAIN.k, help="Active latents per token (per token on average for batchtopk)."),
    keys: str | None = typer.Option(None, help="Comma list such as resid.15 (default: every key in the store)."),
    tokens: int | None = typer.Option(SAE_TRAIN.max_tokens,
                                         help="Training tokens (default: every train-split token)."),
    batch_size: int = typer.Option(SAE_TRAIN.batch_size, help="Tokens per step (at a few million tokens, more "
                                                              "steps beat larger batches)."),
    lr: float | None = typer.Option(SAE_TRAIN.lr, help="Learning rate (default scales with width)."),
    seed: int = typer.Option(SAE_TRAIN.seed),
) -> None:
    """Train TopK / BatchTopK SAEs on the train split of a store, several layers in one pass."""
    from alignlab.interp.train import SAETrainConfig, train_saes

    store = _store(acts)
    ks = [x.strip() for x in keys.split(",")] if keys else store.keys()
    cfg = SAETrainConfig(arch=arch, width=width, expansion=expansion, k=k, max_tokens=tokens,
                         batch_size=batch_size, lr=lr, seed=seed)
    with progress("training") as on_progress, user_errors(ValueError):
        saes = train_saes(store, ks, cfg, out_dir, progress=lambda d, t: on_progress("training tokens", d, t))
    for key in saes:
        log = out_dir / key / "training_log.jsonl"
        last = json.loads(log.read_text().splitlines()[-1]) if log.exists() else {}
        out.print(f"{key}: final training fvu {last.get('fvu', float('nan')):.3f}, "
                  f"l0 {last.get('l0', float('nan')):.1f}, "
                  f"dead {last.get('dead_frac', float('nan')):.1%} -> {out_dir / key}")


@app.command("eval-sae")
def eval_sae_cmd(
    sae: Path = typer.Option(..., help="An SAE folder or the --out of train-sae."),
    acts: Path = typer.Option(..., help="The activation store it was trained on (its held-out contexts are used)."),
    model: str | None = typer.Option(None, help="Model for the CE splice (default: the store's model spec)."),
    tokens: int = typer.Option(EVALUATE_SAE.tokens, help="Held-out tokens for FVU, L0, dead and dense fractions."),
    ce_contexts: int = typer.Option(EVALUATE_SAE.ce_contexts,
                                    help="Held-out contexts for the cross-entropy splice (0: skip)."),
) -> None:
    """Held-out FVU, L0, dead/dense fractions, and CE / KL with the SAE spliced in."""
    quiet_hf()
    from alignlab.interp.pipeline import evaluate_sae

    store = _store(acts)
    spec = model or store.meta.get("model_spec")
    m = _model(spec, store.meta.get("model_dtype", "float32")) if ce_contexts and spec else None
    for d in _sae_dirs(sae):
        with progress(f"{d.name}: reconstruction") as on_progress, user_errors():
            res = evaluate_sae(d, store, m, tokens=tokens, ce_contexts=ce_contexts, progress=on_progress,
                               model_spec=spec)
        ce = (f", CE score {res['ce_score']:.3f}, dCE {res['delta_ce_nats']:.3f} nats, KL {res['kl']:.3f}"
              if "ce_score" in res and res["ce_score"] is not None else "")
        out.print(f"{res['key']}: FVU {res['fvu']:.3f} ({res['fvu_typical']:.3f} without {res['outlier_tokens']} "
                  f"massive-norm tokens), L0 {res['l0']:.1f}, dead {res['dead_frac']:.1%}, "
                  f"dense>1% {res['dense_1pct_frac']:.1%}{ce} ({res['tokens']:,} held-out tokens) "
                  f"-> {d / 'metrics.json'}")


@app.command("probe")
def probe_cmd(
    data: Path = typer.Option(..., help="JSONL of labelled texts ({text, label[, group][, split]})."),
    model: str = target_option("Model spec (white-box)."),
    layers: str = typer.Option(..., help="Comma list of decoder blocks."),
    out_dir: Path = typer.Option(..., "--out"),
    pool: str = typer.Option(PROBES.pool, help="mean (over tokens) or last (token)."),
    text_field: str = typer.Option("text"),
    label_field: str = typer.Option("label"),
    seed: int = typer.Option(PROBES.seed),
) -> None:
    """Linear probes per layer, measured on held-out rows (accuracy, AUROC with CIs)."""
    quiet_hf()
    from alignlab.interp.probes import load_labelled, save_probes, train_probes

    with user_errors(ValueError):
        rows = load_labelled(data, text_field, label_field)
        heads, res = train_probes(_model(model), rows, _ints(layers, "--layers"), pool=pool, seed=seed)
    res["data"] = str(data)
    save_probes(heads, res, out_dir)
    for layer, r in res["layers"].items():
        out.print(f"layer {layer}: held-out accuracy {r['accuracy']:.3f} [{r['accuracy_ci'][0]:.3f}, "
                  f"{r['accuracy_ci'][1]:.3f}], AUROC {r['auroc']:.3f} (train {r['n_train']}, test {r['n_test']})")
    out.print(f"-> {out_dir}/results.json, probes.safetensors")


@app.command("steer")
def steer_cmd(
    prompt: str = typer.Option(..., help="User message to answer with and without steering."),
    direction: str = typer.Option(..., help="sae:DIR:LATENT (decoder row) or probe:DIR:LAYER (probe direction)."),
    layer: int | None = typer.Option(None, help="Block to steer (default: the SAE's or probe's layer)."),
    coef: list[float] = typer.Option([-8.0, 8.0], help="Coefficients (repeatable), in residual-stream units."),
    model: str = typer.Option(DEFAULT_TARGET),
    max_new_tokens: int = typer.Option(48),
) -> None:
    """Generate with a direction added to a block's output, next to the unsteered answer."""
    quiet_hf()
    from safetensors.torch import load_file

    from alignlab.interp.sae import load_sae
    from alignlab.interp.steer import sae_direction, steer
    from alignlab.models.base import GenerationConfig, msg

    kind, _, rest = direction.partition(":")
    where, _, index = rest.rpartition(":")
    if kind not in ("sae", "probe") or not where or not index.isdigit():
        fail(f"--direction {direction!r}: use sae:DIR:LATENT or probe:DIR:LAYER")
    with user_errors(FileNotFoundError):
        if kind == "sae":
            s = load_sae(where)
            vec, layer = sae_direction(s, int(index)), s.cfg.hook_layer if layer is None else layer
        else:
            vec, layer = load_file(str(Path(where) / "probes.safetensors"))[f"layer{index}.direction"], \
                int(index) if layer is None else layer
    if layer is None:
        fail(f"{where}: the SAE records no hook layer; pass --layer")
    m = _model(model)
    gen = GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0)
    conv = [[msg("user", prompt)]]
    out.print(f"[bold]unsteered:[/] {m.generate(conv, gen)[0].text}")
    for c in coef:
        with steer(m, vec, layer, c):
            out.print(f"[bold]layer {layer}, coef {c:+g}:[/] {m.generate(conv, gen)[0].text}")


@app.command("autointerp")
def autointerp_cmd(
    sae: Path = typer.Option(..., help="An SAE folder, or the --out of train-sae (first SAE, or --key)."),
    acts: Path = typer.Option(..., help="Activation store with the SAE's layer (contexts come from it)."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for latents.jsonl, results.json, report.html (resumes)."),
    explainer: str = target_option("Model that writes labels (any spec; openai: for a strong one; 'lexical': "
                                   "the most often marked tokens, no model)."),
    scorer: str = target_option("Model that answers detection/fuzzing (any spec; 'lexical': token overlap "
                                "with the label, no model)."),
    n_latents: int = typer.Option(AUTOINTERP_SAE.n_latents, help="Live SAE latents to label and score."),
    n_neurons: int = typer.Option(AUTOINTERP_SAE.n_neurons,
                                  help="Baseline: random MLP neurons of the same block (0: skip)."),
    n_random: int = typer.Option(AUTOINTERP_SAE.n_random, help="Baseline: latents of a random-weight SAE (0: skip)."),
    tokens: int = typer.Option(AUTOINTERP_SAE.tokens, help="Token budget the contexts are drawn from."),
    key: str | None = typer.Option(None, help="Store key when --sae holds several SAEs (e.g. resid.15)."),
    n_detection: int = typer.Option(AUTOINTERP.n_detection,
                                    help="Held-out activating contexts per latent for detection."),
    n_negative: int = typer.Option(AUTOINTERP.n_negative, help="Non-activating contexts per latent for detection."),
    n_fuzzing: int = typer.Option(AUTOINTERP.n_fuzzing, help="Fuzzing items per latent."),
    scoring: str = typer.Option(AUTOINTERP.scoring,
                                help="auto, logprob (Yes/No likelihoods) or generate (parse a reply)."),
    seed: int = typer.Option(AUTOINTERP.seed),
) -> None:
    """Label sampled SAE latents with an explainer, score the labels by detection and fuzzing,
    against shuffled-label, random-neuron and random-SAE baselines; writes the feature browser."""
    quiet_hf()
    from alignlab.interp.autointerp import AutoInterpConfig
    from alignlab.interp.pipeline import autointerp_sae
    from alignlab.interp.sae import load_sae

    dirs = _sae_dirs(sae)
    if key and not (sae / "cfg.json").exists():  # a train-sae folder: pick the key's SAE
        dirs = [d for d in dirs if d.name == key]
        if not dirs:
            fail(f"{sae}: no SAE for key {key!r}; it holds {', '.join(p.name for p in _sae_dirs(sae))}")
    with user_errors():
        s = load_sae(dirs[0])
    store = _store(acts)
    skey = f"resid.{s.cfg.hook_layer}"
    if skey not in store.keys():
        fail(f"{acts}: holds {', '.join(store.keys())}, not {skey} (the SAE's layer)")
    spec = store.meta.get("model_spec")
    target = _model(spec, store.meta.get("model_dtype", "float32")) if spec and n_neurons else None

    def role(name: str):
        if name == "lexical":
            from alignlab.interp.lexical import LexicalModel

            return LexicalModel()
        return target if target is not None and name == spec else _model(name)

    ex = role(explainer)
    sc = ex if scorer == explainer else role(scorer)
    holder = next((m for m in (target, ex, sc) if hasattr(m, "tokenizer")), None) or _model(spec)
    cfg = AutoInterpConfig(n_detection=n_detection, n_negative=n_negative, n_fuzzing=n_fuzzing,
                           scoring=scoring, seed=seed)
    with progress("activations") as on_progress, user_errors():
        res = autointerp_sae(dirs[0], store, out_dir, ex, sc, cfg, target=target, tokenizer=holder.tokenizer,
                             tokens=tokens, n_latents=n_latents, n_neurons=n_neurons, n_random=n_random,
                             seed=seed, progress=on_progress)
    save(res)

    def row(name: str, r: Mapping[str, Any]) -> None:
        d, f, i = r["detection_bal_acc"], r["fuzzing_bal_acc"], r["interpretable_frac"]

        def m(x):
            if x.get("mean") is None:
                return "n/a"
            return f"{x['mean']:.3f} [{x['ci'][0]:.3f}, {x['ci'][1]:.3f}] (n={x['n']})"

        rate = "n/a" if i.get("rate") is None else f"{i['rate']:.1%} ({i['k']}/{i['n']})"
        out.print(f"{name:<12} detection {m(d)}  fuzzing {m(f)}  interpretable {rate}")

    out.print("")
    row("sae", res)
    for name, b in res.get("baselines", {}).items():
        if b:
            row(name, b)
    out.print(f"\n-> {out_dir}/results.json, latents.jsonl, report.html")
