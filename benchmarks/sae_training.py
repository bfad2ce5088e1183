"""SAE training throughput of alignlab against SAELens, side by side on the same activations.

Both train a TopK (or BatchTopK) SAE with the same width, k, batch size, learning rate, warm-up,
linear decay over the last 20% of steps, AuxK loss (k_aux = d_in // 2, relative weight 1/32, same
dead window) and input normalisation (scalar, mean squared norm -> d_in, folded in at the end), on the
same batches in the same order:

* alignlab: ``train_saes`` on an activation store written with the training tokens (reading and
  shuffling the store is inside the timing);
* SAELens: its own trainer, ``SAETrainer`` with ``TopKTrainingSAE`` (or ``BatchTopKTrainingSAE``),
  fed the same batches through its ``data_provider`` iterator (an in-memory iterator over the same
  store), with its default ``rescale_acts_by_decoder_norm`` and gradient clipping.

SAELens 6 starts ``b_dec`` at 0 and decoder rows at norm 0.1 (its "heuristic" init; with the tied
encoder its first reconstructions are 100 times too small), and estimates the input scale from
batches it then skips. By default it is given alignlab's init instead (the same scale, ``b_dec`` =
the geometric median of the same first batches, unit-norm decoder rows with ``W_enc = W_dec.T``), so
both start alike and the FVUs compare the training, not the init (``--saelens-own-init`` for its
own). Then both SAEs, as saved (they read raw activations), are scored on the same held-out tokens:
pooled FVU, L0 and the fraction of latents that never fire. ``matched_fvu`` gives the tokens and
seconds each needs to reach the
worse of the two final FVUs (from per-step FVUs of each new batch before its update, smoothed over
5 steps; SAELens's are recorded by wrapping its train step, which costs one reduction per step).
Prints one JSON object.

Usage:
    python benchmarks/sae_training.py --acts DIR --key resid.15 [--width 4608 --k 32 --tokens 2000000
        --batch-size 4096 --heldout 65536 --threads N]
    python benchmarks/sae_training.py --synthetic [--d-model 576 ...]   # random sparse activations
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
warnings.filterwarnings("ignore")


def synthetic(n: int, d: int, width: int, seed: int, n_active: int = 24):
    """Tokens that are sparse non-negative sums of 2 * width random unit directions, plus a mean and noise."""
    import torch
    import torch.nn.functional as F

    # the same dictionary for training and held-out tokens; not seed 0, from which the trainers draw
    # their initial decoders (the same stream would start alignlab's decoder at the true directions)
    g = torch.Generator().manual_seed(9001)
    feats = torch.randn(2 * width, d, generator=g)
    feats /= feats.norm(dim=-1, keepdim=True)
    mean = torch.randn(d, generator=g) * 2
    freq = torch.rand(2 * width, generator=g).pow(3) + 1e-3  # some features far more frequent
    g = torch.Generator().manual_seed(9001 + seed)
    idx = torch.multinomial(freq, n * n_active, replacement=True, generator=g).view(n, n_active)
    coef = torch.empty(n, n_active).exponential_(1.0, generator=g)
    x = F.embedding_bag(idx, feats, per_sample_weights=coef, mode="sum")
    return x + mean + 0.05 * torch.randn(n, d, generator=g)


def load_tokens(store, key: str, n_train: int, n_heldout: int):
    """n_train tokens of the store's train split and n_heldout of its held-out split (BOS dropped)."""
    import torch

    if "context_len" not in store.meta:
        raise SystemExit(f"{store.path}: meta.json has no context_len, so no held-out split")

    def first(n, split):
        parts, got = [], 0
        for s in range(0, store.n_tokens, 1 << 20):
            if got >= n:
                break
            part = store.load(key, s, s + (1 << 20), dtype=store.meta["dtype"], split=split, skip_positions=1)
            parts.append(part[:n - got])
            got += len(parts[-1])
        if got < n:
            raise SystemExit(f"{store.path}: {got} usable {split} tokens of {key}, fewer than {n}; "
                             "lower --tokens / --heldout")
        return torch.cat(parts)

    return first(n_train, "train"), first(n_heldout, "heldout").float()


def write_store(path: Path, key: str, x, dtype: str):
    import torch

    from alignlab.interp.acts import ActivationStore, ActivationWriter

    site, _, layer = key.rpartition(".")
    w = ActivationWriter(path, {"model": "benchmark", "layers": [int(layer)], "sites": [site],
                                "d_model": x.shape[1], "dtype": dtype}, shard_tokens=65536)
    n = len(x)
    for s in range(0, n, 65536):
        m = min(65536, n - s)
        w.add({key: x[s:s + m]}, torch.zeros(m, dtype=torch.int32), torch.arange(s, s + m) // 1024,
              torch.ones(m, dtype=torch.int32))
    w.close()
    return ActivationStore(path)


def score(encode, decode, x, width: int) -> dict:
    """Pooled FVU, mean L0 and never-firing fraction on x."""
    import torch

    sse = l0 = 0.0
    fired = torch.zeros(width, dtype=torch.bool)
    with torch.no_grad():
        for s in range(0, len(x), 4096):
            xb = x[s:s + 4096]
            z = encode(xb)
            sse += float((decode(z) - xb).double().pow(2).sum())
            l0 += float((z > 0).sum())
            fired |= (z > 0).any(0)
    ss = float((x.double() - x.double().mean(0)).pow(2).sum())
    return {"fvu_heldout": sse / ss, "l0_heldout": l0 / len(x), "dead_frac_heldout": float((~fired).float().mean())}


def _smooth(values: list[float], n: int = 5) -> list[float]:
    return [sum(values[max(0, i - n + 1):i + 1]) / len(values[max(0, i - n + 1):i + 1]) for i in range(len(values))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--acts", help="activation store directory (alignlab interp capture --out)")
    ap.add_argument("--key", default="resid.15")
    ap.add_argument("--synthetic", action="store_true", help="random sparse activations instead of --acts")
    ap.add_argument("--d-model", type=int, default=576, help="width of the synthetic activations")
    ap.add_argument("--arch", default="topk", choices=["topk", "batchtopk"])
    ap.add_argument("--width", type=int, default=4608)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=2_000_000, help="training tokens")
    ap.add_argument("--heldout", type=int, default=65536, help="held-out tokens for the FVU")
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=None, help="default: 2e-4 / sqrt(width / 16384)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's)")
    ap.add_argument("--saelens-own-init", action="store_true",
                    help="SAELens with its own init (b_dec = 0, scale from batches it then skips)")
    ap.add_argument("--only", choices=["alignlab", "saelens"], help="run one side only")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args()
    if not args.synthetic and not args.acts:
        ap.error("give --acts DIR (and --key) or --synthetic")

    import torch

    from alignlab.interp.acts import ActivationStore
    from alignlab.interp.train import SAETrainConfig, geometric_median, train_saes

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.synthetic:
        key, dtype = "resid.0", "float32"
        train_x = synthetic(args.tokens, args.d_model, args.width, seed=1)
        held_x = synthetic(args.heldout, args.d_model, args.width, seed=2)
    else:
        src = ActivationStore(args.acts)
        src.check_key(args.key)
        key, dtype = args.key, src.meta["dtype"]
        train_x, held_x = load_tokens(src, key, args.tokens, args.heldout)
    d = train_x.shape[1]
    cfg = SAETrainConfig(arch=args.arch, width=args.width, k=args.k, batch_size=args.batch_size, lr=args.lr,
                         checkpoint_every=0, log_every=1, threads=args.threads,
                         split="all").resolve(d)  # the temporary store holds training tokens only
    steps = len(train_x) // cfg.batch_size
    warmup = min(1000, steps // 20)
    decay_steps = int(steps * cfg.decay_frac)
    dead_tokens = min(10_000_000, max(steps * cfg.batch_size // 10, cfg.batch_size))
    n_init = max(1, min(steps, math.ceil(cfg.init_tokens / cfg.batch_size)))
    result = {"settings": {"source": "synthetic" if args.synthetic else f"{args.acts}:{key}", "d_in": d,
                           "arch": args.arch, "width": cfg.width, "k": cfg.k, "batch_size": cfg.batch_size,
                           "lr": cfg.lr, "steps": steps, "tokens": steps * cfg.batch_size,
                           "warmup_steps": warmup, "decay_steps": decay_steps, "dead_tokens": dead_tokens,
                           "heldout_tokens": len(held_x), "threads": torch.get_num_threads(),
                           "saelens_init": ("own" if args.saelens_own_init
                                            else "alignlab's (scale, median b_dec, unit rows)"),
                           "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
                           "cpus": os.cpu_count()}}

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # pay torch's lazy optimizer imports up front
    with tempfile.TemporaryDirectory() as tmp:
        store = write_store(Path(tmp) / "acts", key, train_x, dtype)
        del train_x
        if args.only != "saelens":
            t = time.perf_counter()
            ours = train_saes(store, [key], cfg, Path(tmp) / "alignlab")[key]
            dt = time.perf_counter() - t
            result["alignlab"] = {"seconds": round(dt, 2), "tokens_per_s": round(steps * cfg.batch_size / dt, 1),
                                  **score(ours.encode, ours.decode, held_x, cfg.width)}
            print(json.dumps({"alignlab": result["alignlab"]}), file=sys.stderr)
            log = [json.loads(l) for l in (Path(tmp) / "alignlab" / key / "training_log.jsonl").open()]
        if args.only != "alignlab":
            from sae_lens import SAE
            from sae_lens import __version__ as sl_version
            from sae_lens.config import LoggingConfig, SAETrainerConfig
            from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
            from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
            from sae_lens.training.sae_trainer import SAETrainer

            torch.manual_seed(cfg.seed)
            sae_cls, cfg_cls = ((TopKTrainingSAE, TopKTrainingSAEConfig) if args.arch == "topk"
                                else (BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig))
            init = {} if args.saelens_own_init else {"decoder_init_norm": 1.0}  # unit rows, W_enc = W_dec.T
            theirs = sae_cls(cfg_cls(d_in=d, d_sae=cfg.width, k=cfg.k, aux_loss_coefficient=cfg.aux_coef,
                                     normalize_activations="expected_average_only_in", **init))
            batches = lambda: (b[key] for b in store.batches([key], cfg.batch_size,  # noqa: E731
                                                             shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed))
            # SAELens 6 starts b_dec at 0 and estimates the input scale from batches it then skips;
            # unless --saelens-own-init, give it alignlab's init (same scale, b_dec = geometric median
            # of the same first batches), so that both train from the same start on the same batches
            if args.saelens_own_init:
                provider = itertools.chain(itertools.islice(batches(), n_init), batches())
            else:
                sample = torch.cat(list(itertools.islice(batches(), n_init)))
                scale = math.sqrt(d / float(sample.pow(2).sum(-1).mean()))
                with torch.no_grad():
                    theirs.b_dec.copy_(geometric_median(sample * scale))
                provider = batches()
            trainer = SAETrainer(
                SAETrainerConfig(total_training_samples=steps * cfg.batch_size,
                                 train_batch_size_samples=cfg.batch_size, lr=cfg.lr, lr_end=cfg.lr,
                                 lr_scheduler_name="constant", lr_warm_up_steps=warmup,
                                 lr_decay_steps=decay_steps, dead_feature_window=dead_tokens // cfg.batch_size,
                                 n_batches_for_norm_estimate=n_init, logger=LoggingConfig(log_to_wandb=False)),
                theirs, provider)
            if not args.saelens_own_init:
                trainer.activation_scaler.scaling_factor = scale
            saelens_fvu = []
            train_step = trainer._train_step

            def recording_step(sae, sae_in):
                out = train_step(sae=sae, sae_in=sae_in)
                var = (sae_in - sae_in.mean(0)).pow(2).sum()
                saelens_fvu.append(float((out.sae_out.detach() - sae_in).pow(2).sum() / var))
                return out

            trainer._train_step = recording_step
            t = time.perf_counter()
            trainer.fit()
            dt = time.perf_counter() - t
            theirs.save_inference_model(Path(tmp) / "saelens")  # BatchTopK is saved as JumpReLU
            fitted = SAE.load_from_disk(Path(tmp) / "saelens")
            result["saelens"] = {"version": sl_version, "seconds": round(dt, 2),
                                 "tokens_per_s": round(steps * cfg.batch_size / dt, 1),
                                 **score(fitted.encode, fitted.decode, held_x, cfg.width)}
    if "alignlab" in result and "saelens" in result:
        a, b = result["alignlab"], result["saelens"]
        result["speed_ratio"] = round(a["tokens_per_s"] / b["tokens_per_s"], 2)
        result["fvu_heldout_diff"] = round(a["fvu_heldout"] - b["fvu_heldout"], 4)
        # matched FVU: both trainers' per-step FVU of each new batch before the update that trains on
        # it (a held-out estimate), smoothed over 5 steps; the target is the worse of the two final
        # values, and each side's time to reach it is its mean step time times the steps it needed
        curves = {"alignlab": _smooth([l["fvu"] for l in log]), "saelens": _smooth(saelens_fvu)}
        target = max(c[-1] for c in curves.values())
        matched = {"fvu": round(target, 4)}
        for name, curve in curves.items():
            step = next(i + 1 for i, f in enumerate(curve) if f <= target)
            matched[f"{name}_tokens"] = step * cfg.batch_size
            matched[f"{name}_seconds"] = round(result[name]["seconds"] * step / steps, 2)
        matched["speed_ratio"] = round(matched["saelens_seconds"] / matched["alignlab_seconds"], 2)
        result["matched_fvu"] = matched
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
