"""Train TopK / BatchTopK sparse autoencoders on an activation store, several layers in one pass.

The step itself (selection, sparse decode, hand-written gradients) is in
:mod:`alignlab.interp.train_step`; this module is the training run around it.

Recipe (Gao et al. 2024, sparsify, SAELens): inputs scaled by one scalar so their mean squared norm
is ``d_in``; ``b_dec`` initialised to the geometric median; decoder rows unit-norm (gradient
component along each row removed, rows renormalised after each Adam step); loss = FVU of the batch
plus ``aux_coef`` times the AuxK loss (the top ``aux_k`` dead latents reconstruct the residual);
linear warm-up, constant learning rate, linear decay to 0 over the last ``decay_frac`` of steps.
A BatchTopK SAE keeps the ``k * B`` largest activations of the batch and learns a threshold (a
running mean of the smallest activation kept) so that it is saved, and used, as a JumpReLU SAE.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from alignlab.errors import AlignlabError
from alignlab.interp.acts import ActivationStore
from alignlab.interp.sae import SAE, SAEConfig, load_sae
from alignlab.interp.train_step import select_batchtopk, select_topk, sparse_step

TRAIN_ARCHS = ("topk", "batchtopk")
CKPT_FILE = "checkpoint.safetensors"
DONE_FILE = "training.json"
LOG_FILE = "training_log.jsonl"
# Settings that do not change the result; a resumed run may differ in these.
_NOT_RESULT = ("checkpoint_every", "log_every", "threads")


class TrainError(AlignlabError, ValueError):
    """Bad training settings or an out_dir that does not match them."""


@dataclass
class SAETrainConfig:
    """Settings of an SAE training run (the same for every layer trained in the pass)."""

    arch: str = "topk"
    """"topk" (k latents per token) or "batchtopk" (k per token on average, saved as JumpReLU)."""
    expansion: int = 8
    """Latents per input dimension; used when width is not given."""
    width: int | None = None
    """Number of latents (overrides expansion)."""
    k: int = 32
    """Active latents per token (an average for batchtopk)."""
    lr: float | None = None
    """Adam learning rate; None: 2e-4 / sqrt(width / 16384), as sparsify scales it."""
    batch_size: int = 2048
    """Tokens per step."""
    warmup_steps: int | None = None
    """Linear warm-up steps; None: min(1000, 5% of the steps)."""
    decay_frac: float = 0.2
    """Fraction of the steps, at the end, over which the learning rate decays linearly to 0."""
    aux_k: int | None = None
    """Dead latents used by the AuxK loss; None: d_in // 2 (Gao et al.)."""
    aux_coef: float = 1 / 32
    """Weight of the AuxK loss."""
    dead_tokens: int | None = None
    """A latent is dead after this many tokens without firing; None: min(10M, 10% of the tokens)."""
    threshold_beta: float = 0.99
    """batchtopk: the threshold is a running mean of the smallest kept activation with this decay."""
    init_tokens: int = 16384
    """Tokens (the first batches, also trained on) used for the input scale and b_dec's median."""
    shuffle_buffer: int = 262144
    """Rows shuffled together when reading the store."""
    max_tokens: int | None = None
    """Training tokens; None: one pass over the split."""
    split: str = "train"
    """Store contexts to train on: "train" (all but the held-out contexts) or "all"."""
    checkpoint_every: int = 500
    """Steps between checkpoints (0: only at the end)."""
    log_every: int = 50
    """Steps between lines of training_log.jsonl."""
    seed: int = 0
    """Seed of the initial weights and of the data order."""
    dtype: str = "float32"
    """Parameter dtype (only float32 is supported on CPU)."""
    threads: int | None = None
    """torch threads; None leaves torch's setting alone."""

    def resolve(self, d_in: int) -> SAETrainConfig:
        """A copy with every None filled in for inputs of width ``d_in``; checks the settings."""
        from dataclasses import replace

        if self.arch not in TRAIN_ARCHS:
            raise TrainError(f"SAETrainConfig.arch: {self.arch!r} is not one of {', '.join(TRAIN_ARCHS)}")
        if self.dtype != "float32":
            raise TrainError(f"SAETrainConfig.dtype: {self.dtype!r}; only float32 is supported")
        width = self.width or self.expansion * d_in
        if not 1 <= self.k <= width:
            raise TrainError(f"SAETrainConfig.k: {self.k} must be between 1 and the width ({width})")
        if self.batch_size < 1:
            raise TrainError(f"SAETrainConfig.batch_size: {self.batch_size} must be positive")
        if self.split not in ("train", "all"):
            raise TrainError(f"SAETrainConfig.split: {self.split!r} is not train or all (held-out "
                             "contexts are for measuring)")
        if not 0 <= self.decay_frac <= 1:
            raise TrainError(f"SAETrainConfig.decay_frac: {self.decay_frac} must be in [0, 1]")
        return replace(self, width=width, lr=self.lr or 2e-4 / math.sqrt(width / 16384),
                       aux_k=self.aux_k or max(1, d_in // 2))


def hook_of(key: str) -> tuple[str, int]:
    """SAELens hook name and layer of a store key, e.g. "resid.15" -> ("blocks.15.hook_resid_post", 15)."""
    site, _, layer = key.rpartition(".")
    hooks = {"resid": "hook_resid_post", "mlp_out": "hook_mlp_out", "attn_out": "hook_attn_out"}
    return f"blocks.{layer}.{hooks.get(site, 'hook_' + site)}", int(layer)


def geometric_median(x, iters: int = 50, eps: float = 1e-6):
    """Weiszfeld's algorithm: the point minimising the summed distance to the rows of ``x``."""
    y = x.mean(0)
    for _ in range(iters):
        w = 1 / (x - y).norm(dim=-1).clamp(min=eps)
        y_new = (w[:, None] * x).sum(0) / w.sum()
        if (y_new - y).norm() <= eps * (1 + y.norm()):
            return y_new
        y = y_new
    return y


# ---------------------------------------------------------------------------------------------
# One SAE being trained, and the loop that trains several on the same batches.


def fold_input_scale(sae: SAE, scale: float) -> SAE:
    """An SAE that reads raw activations, from one trained on activations multiplied by ``scale``.

    With ``x' = scale * x`` the pre-activations are ``pre' = (x' - b_dec) W_enc + b_enc``; dividing
    the biases (and threshold) by ``scale`` gives ``pre = pre' / scale`` on raw ``x``, which keeps the
    same latents active (top-k and thresholds are unchanged by a positive factor) and, through the
    unit-norm decoder, returns ``recon' / scale``. Decoder rows stay unit-norm.
    """
    import copy

    import torch

    out = copy.deepcopy(sae)
    # torch types in-place division as returning a Tensor; it returns the Parameter it divided.
    with torch.no_grad():
        out.b_enc /= scale  # type: ignore[misc]
        out.b_dec /= scale  # type: ignore[misc]
        if hasattr(out, "threshold"):
            out.threshold /= scale  # type: ignore[misc]
    return out


class _Layer:
    """Parameters, Adam state and dead-latent counters of the SAE of one store key."""

    def __init__(self, key: str, d_in: int, cfg: SAETrainConfig, gen) -> None:
        import torch

        self.key, self.cfg = key, cfg
        assert cfg.width is not None and cfg.lr is not None  # cfg is resolved (SAETrainConfig.resolve)
        w_dec = torch.randn(cfg.width, d_in, generator=gen)
        w_dec /= w_dec.norm(dim=-1, keepdim=True)
        self.params = {"W_enc": torch.nn.Parameter(w_dec.t().contiguous()),
                       "b_enc": torch.nn.Parameter(torch.zeros(cfg.width)),
                       "W_dec": torch.nn.Parameter(w_dec),
                       "b_dec": torch.nn.Parameter(torch.zeros(d_in))}
        self.opt = torch.optim.Adam(list(self.params.values()), lr=cfg.lr, fused=True)
        self.since_fired = torch.zeros(cfg.width, dtype=torch.long)
        self.scale = 1.0
        self.threshold: float | None = None
        k = cfg.k
        self.select = ((lambda pre: select_topk(pre, k)) if cfg.arch == "topk"
                       else (lambda pre: select_batchtopk(pre, k)))

    def init_from(self, x) -> None:
        """Input scale (mean squared norm -> d_in) and b_dec (geometric median) from a sample."""
        import torch

        self.scale = math.sqrt(x.shape[1] / float(x.pow(2).sum(-1).mean().clamp(min=1e-12)))
        with torch.no_grad():
            self.params["b_dec"].copy_(geometric_median(x * self.scale))

    def step(self, x, lr: float, dead_tokens: int) -> dict:
        import torch

        assert self.cfg.aux_k is not None  # cfg is resolved (SAETrainConfig.resolve)
        with torch.no_grad():
            dead = self.since_fired >= dead_tokens
            stats = sparse_step(self.params, x * self.scale, self.select, dead,
                                self.cfg.aux_k, self.cfg.aux_coef)
            w_dec: torch.Tensor = self.params["W_dec"]
            assert w_dec.grad is not None  # sparse_step wrote it
            w_dec.grad -= (w_dec.grad * w_dec).sum(-1, keepdim=True) * w_dec
            for group in self.opt.param_groups:
                group["lr"] = lr
            self.opt.step()
            w_dec /= w_dec.norm(dim=-1, keepdim=True)
            self.since_fired += x.shape[0]
            self.since_fired[stats["fired"]] = 0
            if stats["min_kept"] is not None:
                m, beta = stats["min_kept"], self.cfg.threshold_beta
                self.threshold = m if self.threshold is None else beta * self.threshold + (1 - beta) * m
        stats["dead_frac"] = float(dead.float().mean())
        stats["mse"] /= self.scale ** 2
        return stats

    def state_tensors(self) -> dict:
        out = {f"{self.key}.{n}": p.detach() for n, p in self.params.items()}
        for n, p in self.params.items():
            for s, v in self.opt.state.get(p, {}).items():
                out[f"{self.key}.adam.{n}.{s}"] = v.reshape(-1) if v.dim() == 0 else v
        out[f"{self.key}.since_fired"] = self.since_fired
        return out

    def load_state(self, tensors: dict, meta: dict) -> None:
        import torch

        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(tensors[f"{self.key}.{n}"])
                state = {s: tensors[f"{self.key}.adam.{n}.{s}"].clone()
                         for s in ("step", "exp_avg", "exp_avg_sq") if f"{self.key}.adam.{n}.{s}" in tensors}
                if state:
                    state["step"] = state["step"].reshape(())
                    self.opt.state[p] = state
        self.since_fired = tensors[f"{self.key}.since_fired"].clone()
        self.scale, self.threshold = meta["scale"], meta["threshold"]

    def to_sae(self, store: ActivationStore, steps: int, tokens: int, fold: bool = True) -> SAE:
        import torch

        cfg = self.cfg
        assert cfg.width is not None  # cfg is resolved (SAETrainConfig.resolve)
        hook, layer = hook_of(self.key)
        details = {"k": cfg.k, "lr": cfg.lr, "batch_size": cfg.batch_size, "steps": steps,
                   "tokens": tokens, "aux_k": cfg.aux_k, "aux_coef": cfg.aux_coef, "seed": cfg.seed,
                   "input_scale": self.scale, "store_key": self.key, "split": cfg.split}
        sae_cfg = SAEConfig(d_in=store.d_model, d_sae=cfg.width,
                            arch="topk" if cfg.arch == "topk" else "jumprelu",
                            k=cfg.k if cfg.arch == "topk" else None, hook_name=hook, hook_layer=layer,
                            model_name=store.meta.get("model"), context_size=store.meta.get("context_len"),
                            training={"training_architecture": cfg.arch,
                                      "training_architecture_details": details})
        sae = SAE(sae_cfg)
        with torch.no_grad():
            for n, p in self.params.items():
                getattr(sae, n).copy_(p)
            if cfg.arch == "batchtopk":
                sae.threshold.fill_(self.threshold or 0.0)
        return fold_input_scale(sae, self.scale) if fold else sae


def _schedule(step: int, steps: int, lr: float, warmup: int, decay_frac: float) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, constant, linear decay to 0."""
    f = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    decay_start = int(steps * (1 - decay_frac))
    if step >= decay_start and steps > decay_start:
        f *= (steps - step) / (steps - decay_start)
    return lr * f


def _result_settings(cfg: SAETrainConfig, keys: list[str]) -> dict:
    return {"keys": list(keys), **{k: v for k, v in asdict(cfg).items() if k not in _NOT_RESULT}}


def _check_same(saved: dict, now: dict, where: Path) -> None:
    for k in sorted(set(saved) | set(now)):
        if saved.get(k) != now.get(k):
            raise TrainError(f"{where}: written by a run with {k}={saved.get(k)!r}, this run has "
                             f"{k}={now.get(k)!r}; use a new out_dir or the same settings to resume")


def _save_checkpoint(out_dir: Path, layers: dict, step: int, tokens: int, settings: dict) -> None:
    import torch
    from safetensors.torch import save_file

    tensors = {"rng": torch.get_rng_state()}
    for layer in layers.values():
        tensors.update(layer.state_tensors())
    meta = {"step": step, "tokens": tokens, "settings": settings,
            "layers": {k: {"scale": l.scale, "threshold": l.threshold} for k, l in layers.items()}}
    tmp = out_dir / (CKPT_FILE + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp),
              metadata={"alignlab": json.dumps(meta)})
    os.replace(tmp, out_dir / CKPT_FILE)


def _load_checkpoint(out_dir: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(out_dir / CKPT_FILE), framework="pt") as f:
        meta = json.loads(f.metadata()["alignlab"])
        return {k: f.get_tensor(k) for k in f.keys()}, meta


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint a run resumes from."""
    if not path.exists():
        return
    lines = [l for l in path.read_text().splitlines() if l.strip() and json.loads(l)["step"] <= step]
    path.write_text("".join(l + "\n" for l in lines))


def train_saes(store: ActivationStore, keys: list[str], cfg: SAETrainConfig, out_dir: str | Path,
               progress: Callable[[int, int], None] | None = None) -> dict[str, SAE]:
    """Train one SAE per store key on the same shuffled batches; resumable.

    Writes ``out_dir/<key>/`` (``cfg.json`` and ``sae_weights.safetensors`` in SAELens format, and
    ``training_log.jsonl``), ``out_dir/checkpoint.safetensors`` every ``cfg.checkpoint_every`` steps
    (weights, Adam state, dead-latent counters, step; written atomically) and
    ``out_dir/training.json`` when done. The logged ``fvu`` and ``mse`` are those of the step's
    batch before the step's update: every batch is new, so they estimate held-out values. Run again
    with the same ``out_dir`` and settings, it
    resumes from the checkpoint (and gives the weights an uninterrupted run gives), or returns the
    finished SAEs.

    Args:
        store: activations.
        keys: store keys to train on, e.g. ``["resid.6", "resid.15"]``.
        cfg: settings.
        out_dir: output directory.
        progress: called as ``progress(tokens_done, tokens_total)`` after every step.

    Returns:
        ``{key: SAE}``, the SAEs as saved (they read raw activations).
    """
    import torch

    keys = list(keys)
    if not keys:
        raise TrainError("train_saes: no keys given; pass store keys such as "
                         f"{', '.join(store.keys()[:2])}")
    for key in keys:
        store.check_key(key)
    cfg = cfg.resolve(store.d_model)
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(store, keys, cfg, Path(out_dir), progress)
    finally:
        torch.set_num_threads(threads)


def _train(store: ActivationStore, keys: list[str], cfg: SAETrainConfig, out_dir: Path,
           progress: Callable[[int, int], None] | None) -> dict[str, SAE]:
    import itertools

    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    settings = _result_settings(cfg, keys)
    done_file = out_dir / DONE_FILE
    if done_file.exists():
        done = json.loads(done_file.read_text())
        _check_same(done["settings"], settings, done_file)
        return {key: load_sae(out_dir / key) for key in keys}

    if cfg.split != "all" and "context_len" not in store.meta:
        raise TrainError(f"{store.path}: meta.json has no context_len, so no held-out split; "
                         "train with split='all'")
    positions = store.tokens()[2]
    available = int(((positions >= 1) & store.split_mask(0, len(positions), cfg.split)).sum())
    budget = min(cfg.max_tokens or available, available)
    steps = budget // cfg.batch_size
    if steps < 1:
        raise TrainError(f"{store.path}: {budget} usable {cfg.split} tokens, fewer than one batch of "
                         f"{cfg.batch_size}; lower batch_size or capture more")
    total = steps * cfg.batch_size
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else min(1000, steps // 20)
    dead_tokens = cfg.dead_tokens or min(10_000_000, max(total // 10, cfg.batch_size))

    gen = torch.Generator().manual_seed(cfg.seed)
    layers = {key: _Layer(key, store.d_model, cfg, gen) for key in keys}
    start = 0
    if (out_dir / CKPT_FILE).exists():
        tensors, meta = _load_checkpoint(out_dir)
        _check_same(meta["settings"], settings, out_dir / CKPT_FILE)
        for key, layer in layers.items():
            layer.load_state(tensors, meta["layers"][key])
        torch.set_rng_state(tensors["rng"])
        start = meta["step"]
    logs = {}
    for key in keys:
        (out_dir / key).mkdir(exist_ok=True)
        _trim_log(out_dir / key / LOG_FILE, start)
        logs[key] = open(out_dir / key / LOG_FILE, "a")

    batches = store.batches(keys, cfg.batch_size, shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed,
                            max_tokens=total, split=cfg.split)
    if start == 0:
        n_init = max(1, min(steps, math.ceil(cfg.init_tokens / cfg.batch_size)))
        first = [next(batches) for _ in range(n_init)]
        for key, layer in layers.items():
            layer.init_from(torch.cat([b[key] for b in first]))
        batches = itertools.chain(first, batches)
    else:
        for _ in range(start):
            next(batches)

    assert cfg.lr is not None  # train_saes resolved cfg
    t0 = time.perf_counter()
    try:
        for step in range(start, steps):
            batch = next(batches)
            lr = _schedule(step, steps, cfg.lr, warmup, cfg.decay_frac)
            tokens = (step + 1) * cfg.batch_size
            for key, layer in layers.items():
                stats = layer.step(batch[key], lr, dead_tokens)
                if (step + 1) % cfg.log_every == 0 or step + 1 == steps:
                    line = {"step": step + 1, "tokens": tokens, "mse": stats["mse"],
                            "fvu": stats["fvu"], "aux_loss": stats["aux"], "l0": stats["l0"],
                            "dead_frac": stats["dead_frac"], "lr": lr}
                    if layer.threshold is not None and cfg.arch == "batchtopk":
                        line["threshold"] = layer.threshold / layer.scale
                    logs[key].write(json.dumps(line) + "\n")
                    logs[key].flush()
            if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < steps:
                _save_checkpoint(out_dir, layers, step + 1, tokens, settings)
            if progress is not None:
                progress(tokens, total)
    finally:
        for f in logs.values():
            f.close()

    saes = {}
    for key, layer in layers.items():
        saes[key] = layer.to_sae(store, steps, total)
        saes[key].save(out_dir / key)
    seconds = time.perf_counter() - t0
    done = {"complete": True, "settings": settings, "steps": steps, "tokens": total,
            "resumed_at_step": start, "seconds": round(seconds, 2),
            "tokens_per_s": round((steps - start) * cfg.batch_size / max(seconds, 1e-9), 1),
            "warmup_steps": warmup, "dead_tokens": dead_tokens,
            "input_scale": {k: l.scale for k, l in layers.items()}}
    tmp = out_dir / (DONE_FILE + ".tmp")
    tmp.write_text(json.dumps(done, indent=1))
    os.replace(tmp, done_file)
    (out_dir / CKPT_FILE).unlink(missing_ok=True)
    return saes
