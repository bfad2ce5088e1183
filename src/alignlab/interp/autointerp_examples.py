"""Auto-interp's examples: cut the token table into windows and pick each latent's windows.

Steps 1 and 2 of :mod:`alignlab.interp.autointerp`: ``make_windows`` cuts the budget's tokens into
windows that never cross a document (nor a context segment); ``build_examples`` ranks the windows
where a latent fires and picks the explainer's windows (top and across rank-quantile bins) and,
from the windows the explainer never sees, the held-out detection and fuzzing items. Also
``sparsify_dense``, which gives dense baselines (neurons, residual dimensions) a latent's density.
torch is imported inside the functions that need it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from alignlab.interp.autointerp_types import (
    MAIN_SOURCE,
    AutoInterpConfig,
    Context,
    LatentExamples,
    TokenTable,
    Windows,
)
from alignlab.stats import round_robin


def make_windows(tokens: TokenTable, ctx_len: int) -> Windows:
    """Cut the token table into windows of at most ``ctx_len`` rows within one document/segment."""
    import torch

    doc = tokens.doc_ids.long()
    n = doc.numel()
    brk = torch.ones(n, dtype=torch.bool)
    brk[1:] = doc[1:] != doc[:-1]
    keep = torch.ones(n, dtype=torch.bool)
    if tokens.positions is not None:
        pos = tokens.positions.long()
        brk |= pos == 0
        keep = pos != 0
        brk[1:] |= pos[:-1] == 0  # a segment's first kept row follows its BOS
    rows: list[int] = []
    lengths: list[int] = []
    docs: list[int] = []
    offsets: list[int] = []
    row_window = torch.full((n,), -1, dtype=torch.long)
    starts = torch.nonzero(brk).flatten().tolist() + [n]
    doc_list = doc.tolist()
    doc_first: dict[int, int] = {}
    for a, b in zip(starts[:-1], starts[1:]):
        doc_first.setdefault(doc_list[a], a)
        if not bool(keep[a]):
            a += 1
        for s in range(a, b, ctx_len):
            e = min(b, s + ctx_len)
            row_window[s:e] = len(rows)
            rows.append(s)
            lengths.append(e - s)
            docs.append(doc_list[s])
            offsets.append(s - doc_first[doc_list[s]])
    return Windows(rows, lengths, docs, offsets, row_window)


def check_inputs(tokens: TokenTable, sources: Mapping[str, tuple[Any, Sequence[int]]]) -> int:
    n = tokens.token_ids.numel()
    if tokens.token_ids.dim() != 1 or tokens.doc_ids.shape != tokens.token_ids.shape:
        raise ValueError(f"token table: token_ids and doc_ids must both be 1-D of the same length, got "
                         f"{tuple(tokens.token_ids.shape)} and {tuple(tokens.doc_ids.shape)}")
    if tokens.positions is not None and tokens.positions.shape != tokens.token_ids.shape:
        raise ValueError("token table: positions must have the shape of token_ids (or be None)")
    for name, (acts, ids) in sources.items():
        if acts.dim() != 2 or acts.shape[0] != n:
            raise ValueError(f"sources[{name!r}]: acts must be [n_tokens={n}, n_latents], got "
                             f"{tuple(acts.shape)}; pass the activations of the token table's rows")
        if acts.shape[1] != len(ids):
            raise ValueError(f"sources[{name!r}]: acts has {acts.shape[1]} columns but {len(ids)} "
                             f"latent ids; give one id per column")
        if len(set(ids)) != len(ids):
            raise ValueError(f"sources[{name!r}]: latent ids repeat; give each column a distinct id")
    return n


def _histogram(col, bins: int) -> dict:
    import torch

    pos = col[col > 0]
    if pos.numel() == 0:
        return {"edges": [], "counts": []}
    top = float(pos.max())
    counts = torch.histc(pos, bins=bins, min=0.0, max=top)
    edges = torch.linspace(0.0, top, bins + 1)
    return {"edges": [round(float(e), 6) for e in edges], "counts": [int(c) for c in counts]}


def sparsify_dense(acts, density: float):
    """Keep, per column, only the top ``density`` fraction of activations (the rest set to 0).

    For dense baselines (MLP neurons, residual dimensions) so that "fires" means the same thing as for
    a sparse latent of that density.
    """
    import torch

    if not 0 < density < 1:
        raise ValueError(f"density must be in (0, 1), got {density}")
    n = acts.shape[0]
    k = max(1, min(n, int(round(n * (1 - density)))))
    thr = torch.kthvalue(acts.float(), k, dim=0).values
    return torch.where(acts > thr.clamp(min=0), acts, torch.zeros_like(acts))


def build_examples(tokens: TokenTable, acts, latent_ids: Sequence[int], cfg: AutoInterpConfig,
                   source: str = MAIN_SOURCE, windows: Windows | None = None) -> list[LatentExamples]:
    """Select the explainer's windows and the held-out scoring items of each latent (column).

    Args:
        tokens: the token table of the budget.
        acts: float Tensor [n_tokens, n_latents].
        latent_ids: the latent index (within its source) of each column.
        cfg: the run's settings.
        source: source name (part of every per-latent seed).
        windows: windows from ``make_windows`` (made here when None).

    Returns:
        One ``LatentExamples`` per column. The explainer's windows and the scored windows are
        disjoint; a latent that fires in fewer windows keeps about half of them for scoring.
    """
    import torch

    check_inputs(tokens, {source: (acts, latent_ids)})
    windows = make_windows(tokens, cfg.ctx_len) if windows is None else windows
    acts = acts.float()
    n_win, m = len(windows), acts.shape[1]
    inside = windows.row_window >= 0
    idx = windows.row_window[inside]
    wmax = torch.zeros((n_win, m)).scatter_reduce_(
        0, idx[:, None].expand(-1, m), acts[inside], "amax", include_self=False)
    ids = tokens.token_ids.long().tolist()

    def text(w: int) -> list[str]:
        if w not in windows._text:
            r = windows.rows[w]
            windows._text[w] = list(tokens.decode_tokens(ids[r:r + windows.lengths[w]]))
        return windows._text[w]

    out = []
    for j, latent in enumerate(latent_ids):
        rng = random.Random(f"{cfg.seed}:{source}:{latent}")
        col = acts[:, j]
        wcol = wmax[:, j]

        def ctx(w: int, b: int | None = None, col: torch.Tensor = col) -> Context:
            r = windows.rows[w]
            return Context(w, windows.docs[w], windows.offsets[w], text(w),
                           col[r:r + windows.lengths[w]].tolist(), b)

        firing = torch.nonzero(wcol > 0).flatten()
        order = firing[torch.argsort(wcol[firing], descending=True, stable=True)].tolist()
        k = len(order)
        reserve = min(max(cfg.n_detection, cfg.n_fuzzing), k // 2)
        n_top = min(cfg.n_top, k - reserve)
        rest = order[n_top:]
        size = -(-len(rest) // cfg.n_bins) if rest else 1
        bins = [rest[i:i + size] for i in range(0, len(rest), size)]
        bin_of = {w: b for b, ws in enumerate(bins) for w in ws}
        for b in bins:
            rng.shuffle(b)
        shown_q = round_robin(bins, min(cfg.n_quantile, len(rest) - reserve))
        positives = round_robin(bins, cfg.n_detection)  # bins now hold only unseen windows
        fuzz_w = round_robin(bins, cfg.n_fuzzing)  # distinct from the positives while they last
        fuzz_w += positives[:cfg.n_fuzzing - len(fuzz_w)]
        silent = torch.nonzero(wcol <= 0).flatten().tolist()
        negatives = rng.sample(silent, min(cfg.n_negative, len(silent)))
        fuzz = []
        correct = [i < (len(fuzz_w) + 1) // 2 for i in range(len(fuzz_w))]
        rng.shuffle(correct)
        for w, right in zip(fuzz_w, correct):
            c = ctx(w, bin_of[w])
            true = c.marks(cfg.mark_frac)
            if right:
                fuzz.append((c, true, True))
                continue
            quiet = [t for t, a in enumerate(c.acts) if a <= 0 and c.tokens[t].strip()]
            if len(quiet) >= len(true):  # else this window cannot be marked wrongly: dropped
                fuzz.append((c, sorted(rng.sample(quiet, len(true))), False))
        out.append(LatentExamples(
            source=source, latent=int(latent), density=float((col > 0).float().mean()),
            max_act=float(col.max()) if col.numel() else 0.0, hist=_histogram(col, cfg.hist_bins),
            top=[ctx(w) for w in order[:n_top]], quantiles=[ctx(w, bin_of[w]) for w in shown_q],
            positives=[ctx(w, bin_of[w]) for w in positives], negatives=[ctx(w) for w in negatives],
            fuzz=fuzz))
    return out
