"""Automated interpretability after delphi: label latents from their contexts, score the labels.

Per latent of each source (the SAE and its baselines):

1. **windows**: the token table is cut into ``ctx_len``-token windows that never cross a document
   (nor a context segment when positions are given; BOS rows are left out). A window's activation
   for a latent is its maximum over the window's tokens.
2. **examples**: windows where the latent fires (max > 0), ranked by activation. The explainer is
   shown the top ``n_top`` and ``n_quantile`` more drawn evenly across ``n_bins`` rank-quantile
   bins of the rest. Held-out windows for scoring are drawn across the same bins from windows the
   explainer never saw; negatives are random windows where the latent never fires.
3. **explain**: the explainer reads the shown windows, with activating tokens marked ``<<so>>``,
   and writes a short label.
4. **detection**: the scorer reads the label and one unmarked window and says whether the pattern
   occurs in it (positives: held-out activating windows; negatives: non-activating windows).
5. **fuzzing**: the scorer reads the label and a held-out activating window with some tokens marked
   (the truly activating ones, or as many random non-activating ones) and says whether the marks
   fit the label. Fuzzing windows are other held-out windows than detection's while there are enough.

With the embedded SmolLM2-135M as explainer and scorer, expect near-chance scores: on planted
features (digits, "the", file/path words) of stdlib docstrings its detection AUROC was near 0.5 on
16 items (0.2-0.8, the chance band at that n) with each of three prompt wordings. The method needs
a capable scorer (``openai:``) to separate the SAE from its baselines.

Each test gives a balanced accuracy per latent: the mean of the true-positive and true-negative
rates over decided items. The scorer sees only the label and the text: never activations, never the
answer. The scorer answers by comparing the log-likelihoods of ``Yes`` and ``No`` as its reply when
the backend can score (and then an AUROC over the margins is reported too, which a yes-biased small
scorer does not flatten), else by generating and parsing a yes/no; an unparseable reply is
unscorable, counted apart and never folded into either side.

The **shuffled** baseline scores every labelled SAE latent with the label of another SAE latent (a
random derangement), on the same held-out items minus any window the donor's explainer saw.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from alignlab.models.base import ChatModel, GenerationConfig, can_score, msg
from alignlab.stats import round_robin

EXPLAINER_SYSTEM = "You are a linguist. You name what marked words have in common, in a few words."
EXPLAINER_TEMPLATE = """Texts with some words marked like <<this>>:

{examples}

Most often marked: {common}

Name what the marked words have in common, in at most 8 words.
Description:"""

SCORER_SYSTEM = "You check texts against a description of a pattern. Answer only Yes or No."
DETECTION_TEMPLATE = """Pattern: {label}

Text: {text}

Does the pattern occur anywhere in this text? Answer Yes or No."""
FUZZING_TEMPLATE = """Pattern: {label}

Text: {text}

Some words in the text are marked like <<this>>. Do the marked words match the pattern? Answer Yes \
or No."""
CANDIDATES = ("Yes", "No")
"""The two replies compared by log-likelihood (first means the feature is present / marks fit)."""
LABEL_MAX_CHARS = 120
SCORING_MODES = ("auto", "logprob", "generate")
MAIN_SOURCE = "sae"
_DEAD = "no activating window in the budget"


@dataclass
class AutoInterpConfig:
    """Settings of an auto-interpretability run (all sampling is seeded per latent)."""

    ctx_len: int = 32
    """Tokens per window; windows never cross a document."""
    n_top: int = 8
    """Top-activating windows shown to the explainer."""
    n_quantile: int = 8
    """More windows shown to the explainer, drawn evenly across the activation-quantile bins."""
    n_bins: int = 5
    """Rank-quantile bins of the activating windows below the top ones."""
    n_detection: int = 10
    """Held-out activating windows scored in detection (the positives)."""
    n_negative: int = 10
    """Random non-activating windows scored in detection (the negatives)."""
    n_fuzzing: int = 10
    """Held-out activating windows scored in fuzzing; half marked correctly, half at random."""
    mark_frac: float = 0.0
    """A token is marked as activating when its act is > 0 and >= this fraction of the window max."""
    seed: int = 0
    """Seed for example sampling, fuzzing marks and the shuffled-label derangement."""
    max_new_tokens: int = 32
    """Token budget of the explainer's label."""
    scorer_max_new_tokens: int = 4
    """Token budget of a generated yes/no when the scorer cannot score log-likelihoods."""
    scoring: str = "auto"
    """``logprob`` (compare Yes/No log-likelihoods), ``generate`` (parse a reply) or ``auto``."""
    batch_size: int = 256
    """Scorer conversations per call (records are written after each call)."""
    explain_batch: int = 16
    """Explainer conversations per call (labels are written after each call)."""
    hist_bins: int = 20
    """Bins of the per-latent histogram of non-zero activations."""
    interpretable_threshold: float = 0.7
    """A latent is interpretable when mean(detection, fuzzing) balanced accuracy >= this."""

    def __post_init__(self) -> None:
        for name in ("ctx_len", "n_top", "n_bins", "max_new_tokens", "scorer_max_new_tokens",
                     "batch_size", "explain_batch", "hist_bins"):
            if getattr(self, name) < 1:
                raise ValueError(f"AutoInterpConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_quantile", "n_detection", "n_negative", "n_fuzzing"):
            if getattr(self, name) < 0:
                raise ValueError(f"AutoInterpConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.mark_frac < 1:
            raise ValueError(f"AutoInterpConfig.mark_frac must be in [0, 1), got {self.mark_frac}")
        if self.scoring not in SCORING_MODES:
            raise ValueError(f"AutoInterpConfig.scoring must be one of {SCORING_MODES}, got {self.scoring!r}")
        if not 0 < self.interpretable_threshold <= 1:
            raise ValueError("AutoInterpConfig.interpretable_threshold must be in (0, 1]")

    def rule(self) -> str:
        return (f"interpretable: mean of detection and fuzzing balanced accuracy >= "
                f"{self.interpretable_threshold}; latents where either is undefined (no label, or no "
                f"decided positive or negative item) are excluded and counted")


@dataclass
class TokenTable:
    """The tokens of the activation budget, in corpus order.

    Attributes:
        token_ids: LongTensor [n].
        doc_ids: LongTensor [n]; a window never spans two documents.
        decode_tokens: ids -> one string per token (so highlighting is per token).
        positions: optional LongTensor [n] (offset in the context segment; 0 = BOS): windows also
            break at segment starts and leave the BOS rows out.
    """

    token_ids: Any
    doc_ids: Any
    decode_tokens: Callable[[list[int]], list[str]]
    positions: Any = None


@dataclass
class Windows:
    """Non-overlapping windows over a token table: first row, length, document and offset in it."""

    rows: list[int]
    lengths: list[int]
    docs: list[int]
    offsets: list[int]
    row_window: Any  # LongTensor [n]: window of each row, -1 for rows in no window
    _text: dict[int, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Context:
    """One window as shown: per-token strings and the latent's per-token activations."""

    window: int
    doc: int
    start: int
    tokens: list[str]
    acts: list[float]
    bin: int | None = None

    def marks(self, frac: float) -> list[int]:
        top = max(self.acts, default=0.0)
        return [i for i, a in enumerate(self.acts) if a > 0 and a >= frac * top]

    def to_dict(self) -> dict:
        d = {"tokens": self.tokens, "acts": [round(a, 4) for a in self.acts], "doc": self.doc,
             "start": self.start}
        if self.bin is not None:
            d["bin"] = self.bin
        return d


@dataclass
class LatentExamples:
    """What one latent gives the explainer and the scorer, and its activation statistics."""

    source: str
    latent: int
    density: float
    max_act: float
    hist: dict
    top: list[Context]
    quantiles: list[Context]
    positives: list[Context]
    """Held-out activating windows for detection."""
    negatives: list[Context]
    fuzz: list[tuple[Context, list[int], bool]]
    """Held-out fuzzing items: window, marked token indices, whether the marks are the true ones."""

    @property
    def shown(self) -> list[Context]:
        return self.top + self.quantiles

    def explainer_windows(self) -> set[int]:
        return {c.window for c in self.shown}

    def scored_windows(self) -> set[int]:
        return {c.window for c in self.positives + self.negatives} | {c.window for c, _, _ in self.fuzz}


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
    rows, lengths, docs, offsets = [], [], [], []
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


def _check_inputs(tokens: TokenTable, sources: Mapping[str, tuple[Any, Sequence[int]]]) -> int:
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

    _check_inputs(tokens, {source: (acts, latent_ids)})
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

        def ctx(w: int, b: int | None = None) -> Context:
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


# ------------------------------------------------------------------------------------ prompts
def render(tokens: Sequence[str], marks: Sequence[int] = ()) -> str:
    """Join per-token strings into one line, wrapping runs of marked tokens in ``<<`` ``>>``."""
    clean = [t.replace("<<", "< <").replace(">>", "> >").replace("\n", " ").replace("\r", " ")
             for t in tokens]
    marked = set(marks)
    out, i = [], 0
    while i < len(clean):
        if i not in marked:
            out.append(clean[i])
            i += 1
            continue
        j = i
        while j + 1 < len(clean) and j + 1 in marked:
            j += 1
        span = "".join(clean[i:j + 1])
        lead = len(span) - len(span.lstrip())
        out.append(span[:lead] + "<<" + span[lead:].rstrip() + ">>" + span[len(span.rstrip()):]
                   if span.strip() else span)
        i = j + 1
    return re.sub(r" {2,}", " ", "".join(out)).strip()


def explainer_prompt(ex: LatentExamples, cfg: AutoInterpConfig) -> list:
    """The explainer's conversation: the shown windows with activating tokens marked."""
    lines, common = [], Counter()
    for i, c in enumerate(ex.shown, 1):
        marks = c.marks(cfg.mark_frac)
        lines.append(f"{i}. {render(c.tokens, marks)}")
        common.update(c.tokens[t].strip() for t in marks if c.tokens[t].strip())
    words = ", ".join(f'"{w}"' for w, _ in common.most_common(5)) or "(none)"
    return [msg("system", EXPLAINER_SYSTEM),
            msg("user", EXPLAINER_TEMPLATE.format(examples="\n".join(lines), common=words))]


_LEAD_IN = re.compile(
    r"^\W*(?:(?:label|explanation|answer|pattern|feature|description|phrase)\W*?:|(?:the )?(?:(?:marked|"
    r"highlighted) words|words (?:marked|highlighted))(?: most often)?(?: all)?(?: are| have| share| is)?(?: in common)?"
    r"(?: a common pattern of)?\W*?:?(?=\s|$))\s*", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


def parse_label(text: str) -> str | None:
    """A label from the explainer's reply: its first line without a lead-in ("Description:",
    "The marked words are:") or markers; a lead-in followed by a list gives the list's distinct
    items, comma-separated (what a small explainer often writes)."""
    lines = [ln.strip() for ln in text.replace("<<", "").replace(">>", "").splitlines() if ln.strip()]
    if not lines:
        return None
    head = _LEAD_IN.sub("", lines[0]).strip()
    if not head or head.endswith(":"):
        items = [_BULLET.sub("", ln).strip().strip("\"'`*,").strip() for ln in lines[1:] if _BULLET.match(ln)]
        head = ", ".join(dict.fromkeys(i for i in items if i)) or head.rstrip(":")
    head = head.strip().strip("`*").strip().rstrip(".").strip()
    if len(head) > 1 and head[0] == head[-1] and head[0] in "\"'" and head.count(head[0]) == 2:
        head = head[1:-1].strip()
    return head[:LABEL_MAX_CHARS] or None


def detection_prompt(label: str, ctx: Context) -> list:
    return [msg("system", SCORER_SYSTEM),
            msg("user", DETECTION_TEMPLATE.format(label=label, text=render(ctx.tokens)))]


def fuzzing_prompt(label: str, ctx: Context, marks: Sequence[int]) -> list:
    return [msg("system", SCORER_SYSTEM),
            msg("user", FUZZING_TEMPLATE.format(label=label, text=render(ctx.tokens, marks)))]


def parse_yes_no(text: str) -> bool | None:
    """Yes/No from a generated reply: its first word, else the only one of yes/no it contains.

    An echoed "Yes or No" is removed first, so it decides nothing.
    """
    text = re.sub(r"\b(?:yes\s*(?:or|/)\s*no|no\s*(?:or|/)\s*yes)\b", " ", text, flags=re.IGNORECASE)
    m = re.match(r"^\W*(yes|no)\b", text, re.IGNORECASE)
    if m:
        return m.group(1).lower() == "yes"
    found = {w.lower() for w in re.findall(r"\b(yes|no)\b", text, re.IGNORECASE)}
    return found.pop() == "yes" if len(found) == 1 else None


# ------------------------------------------------------------------------------------ explain
def explain(examples: Sequence[LatentExamples], explainer: ChatModel,
            cfg: AutoInterpConfig) -> list[tuple[str | None, str | None]]:
    """Label each latent from its shown windows; returns ``(label, error)`` per latent.

    A latent with no activating window is not sent to the explainer (error says so).
    """
    out: list[tuple[str | None, str | None]] = [(None, _DEAD)] * len(examples)
    todo = [i for i, ex in enumerate(examples) if ex.shown]
    gen = GenerationConfig(max_new_tokens=cfg.max_new_tokens, temperature=0.0)
    comps = explainer.generate([explainer_prompt(examples[i], cfg) for i in todo], gen) if todo else []
    for i, comp in zip(todo, comps, strict=True):
        if not comp.ok:
            out[i] = (None, f"explainer error: {comp.error}")
            continue
        label = parse_label(comp.text)
        out[i] = (label, None) if label else (None, f"no label in the explainer's reply {comp.text[:80]!r}")
    return out


# ------------------------------------------------------------------------------------ scoring
def resolve_scoring(scorer: ChatModel, mode: str = "auto") -> str:
    """``logprob`` when the scorer can score continuations (or was told to), else ``generate``."""
    if mode != "auto":
        return mode
    return "logprob" if can_score(scorer) else "generate"


def _ask(scorer: ChatModel, convs: list, mode: str, cfg: AutoInterpConfig) -> list[tuple[bool | None, float | None]]:
    """One (answer, Yes-minus-No log-likelihood margin) per conversation, ``batch_size`` at a time."""
    out: list[tuple[bool | None, float | None]] = []
    gen = GenerationConfig(max_new_tokens=cfg.scorer_max_new_tokens, temperature=0.0)
    for s in range(0, len(convs), cfg.batch_size):
        chunk = convs[s:s + cfg.batch_size]
        if mode == "logprob":
            for yes, no in scorer.score(chunk, [list(CANDIDATES)] * len(chunk)):
                out.append((yes > no, yes - no))
        else:
            out.extend((parse_yes_no(c.text) if c.ok else None, None) for c in scorer.generate(chunk, gen))
    return out


def _auc(pairs: list[tuple[bool, float]]) -> float | None:
    pos = [m for t, m in pairs if t]
    neg = [m for t, m in pairs if not t]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def _tally(truth: list[bool], answers: list[tuple[bool | None, float | None]]) -> dict:
    """Balanced accuracy and counts of one latent's items; unscorable answers are kept apart."""
    c = Counter((t, p) for t, (p, _) in zip(truth, answers, strict=True))
    tp, fn, tn, fp = c[True, True], c[True, False], c[False, False], c[False, True]
    bal = (tp / (tp + fn) + tn / (tn + fp)) / 2 if tp + fn and tn + fp else None
    margins = [(t, m) for t, (_, m) in zip(truth, answers) if m is not None]
    return {"bal_acc": bal, "n": tp + fn + tn + fp, "tp": tp, "tn": tn, "fp": fp, "fn": fn,
            "unscorable": c[True, None] + c[False, None], "auc": _auc(margins),
            "items": [[int(t), None if p is None else int(p), None if m is None else round(m, 3)]
                      for t, (p, m) in zip(truth, answers)]}


def _items(kind: str, ex: LatentExamples, label: str | None, skip: set[int] = frozenset()):
    """The scorer's conversations for one latent and their truths (none without a label)."""
    if label is None:
        return [], []
    if kind == "detection":
        items = [(c, True) for c in ex.positives] + [(c, False) for c in ex.negatives]
        items = [(detection_prompt(label, c), t) for c, t in items if c.window not in skip]
    else:
        items = [(fuzzing_prompt(label, c, m), t) for c, m, t in ex.fuzz if c.window not in skip]
    return [conv for conv, _ in items], [t for _, t in items]


def _score(kind, examples, labels, scorer, cfg, mode) -> list[dict]:
    mode = resolve_scoring(scorer, mode)
    built = [_items(kind, ex, lab) for ex, lab in zip(examples, labels, strict=True)]
    answers = _ask(scorer, [c for convs, _ in built for c in convs], mode, cfg)
    out, at = [], 0
    for convs, truth in built:
        out.append(_tally(truth, answers[at:at + len(convs)]))
        at += len(convs)
    return out


def score_detection(examples: Sequence[LatentExamples], labels: Sequence[str | None], scorer: ChatModel,
                    cfg: AutoInterpConfig, mode: str | None = None) -> list[dict]:
    """Detection result per latent (``bal_acc`` None when a class has no decided item)."""
    return _score("detection", examples, labels, scorer, cfg, mode or cfg.scoring)


def score_fuzzing(examples: Sequence[LatentExamples], labels: Sequence[str | None], scorer: ChatModel,
                  cfg: AutoInterpConfig, mode: str | None = None) -> list[dict]:
    """Fuzzing result per latent (positives: true marks; negatives: as many random marks)."""
    return _score("fuzzing", examples, labels, scorer, cfg, mode or cfg.scoring)


# The run (resume, baselines, results) lives in its own module; re-exported here.
from alignlab.interp.autointerp_run import run_autointerp  # noqa: E402,F401
