"""Downstream loss with an SAE spliced into the forward pass.

On held-out contexts of an activation store, the model's next-token cross-entropy is measured
three ways: clean, with block ``L``'s output replaced by the SAE's reconstruction, and with it
replaced by zeros. Reported (SAELens / sparsify conventions):

* ``ce_clean``, ``ce_spliced``, ``ce_zero`` (nats per token);
* ``delta_ce_nats`` = spliced - clean, the raw cost of the SAE;
* ``ce_score`` = (zero - spliced) / (zero - clean), the fraction of the loss gap recovered; it
  flatters residual-stream SAEs because zero-ablating the residual stream is catastrophic, so
  read it with ``delta_ce_nats`` and ``kl`` (``None`` when zero-ablation does not hurt, as in a
  random model);
* ``kl``: mean KL(clean || spliced) of the next-token distributions.

BOS rows are left unreplaced (the SAE never trains on the attention-sink token), and predictions
of a BOS token are not scored; both conventions are stated in the results.
"""

from __future__ import annotations

from collections.abc import Callable

from alignlab.interp.acts import HOLDOUT_EVERY, ActivationStore
from alignlab.models.whitebox import hf_parts, hooks


def heldout_contexts(store: ActivationStore, n_contexts: int):
    """``(token_ids, positions)`` ``[n, context_len]`` of the store's held-out contexts."""
    import torch

    ids, _, pos = store.tokens()
    t = int(store.meta["context_len"])
    n_all = len(ids) // t
    ids, pos = ids[:n_all * t].view(n_all, t), pos[:n_all * t].view(n_all, t)
    held = torch.arange(n_all) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
    return ids[held][:n_contexts], pos[held][:n_contexts]


def reconstruct(sae, x):
    """The SAE's reconstruction of raw activations ``x`` (float32 in, float32 out)."""
    return sae.decode(sae.encode(x))


def ce_metrics(model, sae, layer: int, store: ActivationStore, n_contexts: int = 64, batch_size: int = 8,
               progress: Callable[[int, int], None] | None = None) -> dict:
    """Clean / spliced / zero-ablated next-token CE and KL on held-out contexts of ``store``."""
    import torch
    import torch.nn.functional as F

    _, lm, _ = hf_parts(model)
    ids, pos = heldout_contexts(store, n_contexts)
    if len(ids) == 0:
        raise ValueError(f"{store.path}: no held-out contexts (every {HOLDOUT_EVERY}th context is held "
                         f"out; capture more tokens)")
    device = next(lm.parameters()).device
    sums = {"clean": 0.0, "spliced": 0.0, "zero": 0.0, "kl": 0.0}
    count = 0
    for s in range(0, len(ids), batch_size):
        x = ids[s:s + batch_size].to(device)
        keep = (pos[s:s + batch_size] > 0).to(device)  # rows the SAE may replace (not BOS)
        target_ok = keep[:, 1:]  # do not score predictions of a BOS token

        def splice(hidden, mode, keep=keep):
            new = torch.zeros_like(hidden) if mode == "zero" else \
                reconstruct(sae, hidden.float()).to(hidden.dtype)
            return torch.where(keep[..., None], new, hidden)

        logps = {}
        with torch.inference_mode():
            for mode in ("clean", "spliced", "zero"):
                edit = {} if mode == "clean" else {layer: lambda h, mode=mode: splice(h, mode)}
                with hooks(lm, edit=edit):
                    logits = lm(input_ids=x, use_cache=False).logits[:, :-1].float()
                logps[mode] = F.log_softmax(logits, dim=-1)
            tgt = x[:, 1:]
            for mode in ("clean", "spliced", "zero"):
                nll = -logps[mode].gather(-1, tgt[..., None])[..., 0]
                sums[mode] += float(nll[target_ok].sum())
            kl = (logps["clean"].exp() * (logps["clean"] - logps["spliced"])).sum(-1)
            sums["kl"] += float(kl[target_ok].sum())
            count += int(target_ok.sum())
        if progress:
            progress(min(s + batch_size, len(ids)), len(ids))
    clean, spliced, zero = (sums[m] / count for m in ("clean", "spliced", "zero"))
    gap = zero - clean
    return {"ce_clean": clean, "ce_spliced": spliced, "ce_zero": zero,
            "delta_ce_nats": spliced - clean,
            "ce_score": (zero - spliced) / gap if gap > 0 else None,
            "kl": sums["kl"] / count, "ce_tokens": count, "ce_contexts": len(ids),
            "ce_conventions": "held-out contexts; BOS rows not replaced; BOS targets not scored"}
