"""One step of SAE training, written out by hand: latent selection, sparse decode, gradients.

The step is written out by hand rather than left to autograd, because on a CPU the dense work is what
costs: only the encoder matmul ``[B, d] @ [d, F]`` is dense. The decoder is an ``embedding_bag``
over the ``k`` chosen rows of each token, the latents' gradients are a sampled matmul
(``torch.sparse.sampled_addmm``) and the weight gradients are sparse-times-dense products
(``[F, B]`` CSR times ``[B, d]``). ``tests/interp/test_train.py`` checks these gradients against
autograd on the dense formulation. The training loop around it is :mod:`alignlab.interp.train`.
torch is imported inside the functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


def select_topk(pre, k: int):
    """Per-token top-k: ``(crow [B+1], cols [B*k] sorted within each row, vals [B*k] >= 0)``."""
    import torch

    vals, idx = pre.topk(k, dim=-1, sorted=False)
    idx, order = idx.sort(dim=-1)
    vals = vals.gather(-1, order).relu_()
    crow = torch.arange(0, pre.shape[0] * k + 1, k)
    return crow, idx.reshape(-1), vals.reshape(-1)


def select_batchtopk(pre, k: int):
    """The ``k * B`` largest ReLU'd pre-activations of the batch, as CSR parts like :func:`select_topk`.

    Exact, and cheaper than a top-k over all ``B * F`` values: take each row's top ``m = 4k`` as
    candidates; a row whose every candidate makes the cut may hold more, so its whole row joins the
    candidates; values outside the candidates are then below the cut.
    """
    import torch

    b, f = pre.shape
    n = k * b
    m = min(f, 4 * k)
    cand_v, cand_i = pre.topk(m, dim=-1, sorted=False)
    cut = cand_v.reshape(-1).topk(n, sorted=False).values.min()
    full = (cand_v >= cut).all(dim=-1) if m < f else torch.zeros(b, dtype=torch.bool)
    rows = torch.arange(b)[:, None].expand(b, m)
    flat_v, flat_pos = cand_v[~full].reshape(-1), (rows[~full] * f + cand_i[~full]).reshape(-1)
    if full.any():
        fr = full.nonzero()[:, 0]
        flat_v = torch.cat([flat_v, pre[fr].reshape(-1)])
        flat_pos = torch.cat([flat_pos, (fr[:, None] * f + torch.arange(f)).reshape(-1)])
    top = flat_v.topk(n, sorted=False)
    pos, order = flat_pos[top.indices].sort()
    vals = top.values[order].relu_()
    rows, cols = pos // f, pos % f
    crow = torch.zeros(b + 1, dtype=torch.long)
    crow[1:] = torch.bincount(rows, minlength=b).cumsum(0)
    return crow, cols, vals


def sparse_step(params: dict, x, select: Callable, dead=None, aux_k: int = 0, aux_coef: float = 0.0):
    """Loss and gradients of one batch; writes ``.grad`` of the four parameters.

    Args:
        params: ``W_enc`` [d, F], ``b_enc`` [F], ``W_dec`` [F, d], ``b_dec`` [d] (training scale).
        x: batch [B, d], already scaled.
        select: :func:`select_topk` or :func:`select_batchtopk` with k bound.
        dead: bool [F] mask of dead latents for the AuxK loss (None: no AuxK loss).

    Returns:
        ``fvu`` (batch FVU, the main loss), ``aux`` (AuxK loss before its coefficient), ``l0``,
        ``fired`` (bool [F]), ``min_kept`` (smallest positive kept activation, or None).
    """
    import torch
    import torch.nn.functional as F

    W_enc, b_enc, W_dec, b_dec = (params[n] for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
    B, d = x.shape
    n_lat = W_dec.shape[0]
    xc = x - b_dec
    pre = torch.addmm(b_enc, xc, W_enc)
    crow, cols, vals = select(pre)
    recon = F.embedding_bag(cols, W_dec, crow[:-1], mode="sum", per_sample_weights=vals) + b_dec
    err = recon - x
    total_var = (x - x.mean(0)).pow(2).sum().clamp(min=1e-12)
    sq = err.pow(2).sum()
    g_out = err * (2 / total_var)
    # latent gradients: g_out[b] . W_dec[j] at the chosen (b, j) only
    pattern = torch.sparse_csr_tensor(crow, cols, torch.zeros_like(vals), (B, n_lat),
                                      check_invariants=False)
    g_vals = torch.sparse.sampled_addmm(pattern, g_out, W_dec.t(), beta=0.0).values()
    live = vals > 0
    g_pre = g_vals * live
    # weight gradients: [F, B] sparse (transpose of the pattern, coalesced) times dense
    order = torch.argsort(cols, stable=True)
    rows = torch.repeat_interleave(torch.arange(B), crow.diff())
    ind_t = torch.stack([cols[order], rows[order]])

    def t_times(values, dense):
        sp = torch.sparse_coo_tensor(ind_t, values[order], (n_lat, B), is_coalesced=True,
                                     check_invariants=False)
        return torch.sparse.mm(sp, dense)

    grad_W_dec = t_times(vals, g_out)
    grad_W_enc_t = t_times(g_pre, xc)
    grad_b_enc = torch.bincount(cols, weights=g_pre, minlength=n_lat)
    aux = torch.zeros(())
    if dead is not None and aux_coef > 0 and bool(dead.any()):
        idx = dead.nonzero()[:, 0]
        n_dead = len(idx)
        ka = min(aux_k, n_dead)
        acts = pre[:, idx].relu()
        if ka < n_dead:
            top = acts.topk(ka, dim=-1, sorted=False)
            acts = torch.zeros_like(acts).scatter_(-1, top.indices, top.values)
        w_d = W_dec[idx]
        aux_err = acts @ w_d + err  # reconstruct the residual x - recon
        aux = aux_err.pow(2).sum() / total_var
        scale = aux_coef * min(n_dead / aux_k, 1.0)
        g_aux = aux_err * (2 * scale / total_var)
        grad_W_dec.index_add_(0, idx, acts.t() @ g_aux)
        g_acts = (g_aux @ w_d.t()) * (acts > 0)
        grad_W_enc_t.index_add_(0, idx, g_acts.t() @ xc)
        grad_b_enc.index_add_(0, idx, g_acts.sum(0))
    grad_b_dec = g_out.sum(0) - W_enc @ grad_b_enc
    W_enc.grad, b_enc.grad, W_dec.grad, b_dec.grad = grad_W_enc_t.t().contiguous(), grad_b_enc, grad_W_dec, grad_b_dec
    fired = torch.bincount(cols[live], minlength=n_lat) > 0
    kept = vals[live]
    return {"fvu": float(sq / total_var), "aux": float(aux), "l0": float(live.sum()) / B,
            "fired": fired, "min_kept": float(kept.min()) if len(kept) else None,
            "mse": float(sq) / B}
