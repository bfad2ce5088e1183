"""In-process transformers model: batched generation, log-likelihood scoring, white-box access.

Generation sorts prompts by length, left-pads each batch, and decodes with a KV cache under
``torch.inference_mode``. Rows that finish (EOS or a stop string) leave the batch at once, so a
batch costs what its live rows need rather than what its longest row needs. The KV cache and the
grouped prefill it is filled by are in :mod:`alignlab.models.hf_cache`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from alignlab.models.base import (
    ChatModel,
    Completion,
    GenerationConfig,
    GenerationMonitor,
    Message,
    ProgressFn,
    apply_stop,
)
from alignlab.models.hf_cache import (
    PREFILL_TOKENS,
    cache_kwarg,
    preallocated_cache,
    prefill_groups,
    select_cache,
)

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


def _torch_dtype(name: str):
    import torch

    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {name!r}")
    return getattr(torch, _DTYPES[name])


class HFModel(ChatModel):
    """A causal LM loaded with transformers, run in this process.

    Args:
        path: a local HF directory, a hub id (when a hub is reachable), or a ``.gguf`` file.
        batch_size: rows decoded together.
        dtype: float32 (default on CPU), bfloat16 or float16.
        device: ``cpu``, ``cuda``, ``mps`` or ``auto``.
        name: identity override (embedded models pass ``embedded:NAME``).
        max_prompt_tokens: prompts longer than this are cut from the left (keeping the end).
        threads: torch intra-op threads (default: leave torch's choice).
        onednn: on CPU in float32, run the linear layers through oneDNN with weights packed once
            (``models.onednn``: 1.6-1.7x faster matmuls on the benchmark machine, same fp32
            arithmetic; the linear weights take twice the memory). ``ALIGNLAB_ONEDNN=0`` turns
            it off everywhere.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        batch_size: int = 32,
        dtype: str = "float32",
        device: str = "auto",
        name: str | None = None,
        max_prompt_tokens: int = 2048,
        threads: int | None = None,
        onednn: bool = True,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.path = str(path)
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        p = Path(self.path)
        kwargs: dict[str, Any] = {}
        src = self.path
        if p.suffix == ".gguf":
            kwargs["gguf_file"] = p.name
            src = str(p.parent)
        elif not p.exists() and (p.is_absolute() or self.path.startswith(".")):
            raise FileNotFoundError(f"hf model path {self.path} does not exist")
        t0 = time.time()
        self.tokenizer = AutoTokenizer.from_pretrained(src, **kwargs)
        self.model = AutoModelForCausalLM.from_pretrained(src, dtype=_torch_dtype(dtype), **kwargs)
        # PreTrainedModel.to is wrapped by functools.wraps(nn.Module.to), and typeshed's _Wrapped is
        # not a descriptor, so mypy sees an unbound function expecting the model as first argument.
        self.model.to(device).eval()  # type: ignore[arg-type]
        self._cache_kw = cache_kwarg(self.model)
        self.packed_linears = 0
        if onednn and device == "cpu":
            from alignlab.models.onednn import pack_linears

            self.packed_linears = pack_linears(self.model)
        self.load_seconds = time.time() - t0
        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"
        self._name = name or f"hf:{self.path}"
        self._dtype = _DTYPES[dtype]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tok.eos_token_id is not None:
            eos_ids.add(tok.eos_token_id)
        self.eos_ids = sorted(eos_ids)

    @property
    def identity(self) -> str:
        return f"{self._name}|{self._dtype}"

    # ----------------------------------------------------------------------------- prompts
    def render(self, conv: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The prompt text for a conversation (chat template, or plain text without one)."""
        tok = self.tokenizer
        if tok.chat_template:
            # transformers types the conversation as list[dict[str, str]], which a list of Message
            # TypedDicts is not to mypy, and the result as a union; with tokenize=False it is the text.
            return cast(str, tok.apply_chat_template(list(conv), tokenize=False,  # type: ignore[arg-type]
                                                     add_generation_prompt=add_generation_prompt))
        text = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in conv)
        return text + ("\nAssistant:" if add_generation_prompt else "")

    def encode(self, conv: Sequence[Message]) -> list[int]:
        ids = self.tokenizer(self.render(conv), add_special_tokens=False)["input_ids"]
        return ids[-self.max_prompt_tokens:]

    # ----------------------------------------------------------------------------- generation
    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        config: GenerationConfig | None = None,
        progress: ProgressFn | None = None,
        monitor: GenerationMonitor | None = None,
    ) -> list[Completion]:
        """Generate replies; a ``monitor`` may read activations and stop rows as they decode."""
        config = config or GenerationConfig()
        encoded = [self.encode(c) for c in conversations]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        out: list[Completion | None] = [None] * len(encoded)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            seed = None if config.seed is None else config.seed + start
            batch = self._generate_batch([encoded[i] for i in idx], config, seed, monitor, idx)
            for i, comp in zip(idx, batch):
                out[i] = comp
            if progress:
                progress(len(idx))
        return [c for c in out if c is not None]

    def _generate_batch(self, prompts: list[list[int]], config: GenerationConfig,
                        seed: int | None, monitor: GenerationMonitor | None = None,
                        rows: list[int] | None = None) -> list[Completion]:
        import torch

        dev = self.device
        pad = self.tokenizer.pad_token_id
        n = len(prompts)
        ids, mask = _left_pad(prompts, pad)
        width = ids.shape[1]
        ids, mask = ids.to(dev), mask.to(dev)
        gen = None
        if config.temperature > 0:
            gen = torch.Generator(device=dev)
            gen.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(4), "little"))
        eos = torch.tensor(self.eos_ids, device=dev) if self.eos_ids else None

        tokens: list[list[int]] = [[] for _ in range(n)]
        logps: list[list[float]] = [[] for _ in range(n)]
        finish = ["length"] * n
        texts = [""] * n
        alive = list(range(n))  # original row of each live batch row
        cache = preallocated_cache(self.model.config, width + config.max_new_tokens)
        position = (mask.cumsum(-1) - 1).clamp(min=0)
        rows = rows if rows is not None else list(range(n))
        layers = tuple(monitor.layers) if monitor is not None else ()
        want_hs = bool(layers)
        gsum = None  # running sum of the generated tokens' hidden states (monitored layers)
        blocked: set[int] = set()
        out: Any  # the model's output for the previous step's tokens (set before it is read, step > 0)
        with torch.inference_mode():
            logits, pooled = self._prefill(ids, mask, position, cache, layers)
            if monitor is not None:
                if pooled is not None:
                    gsum = torch.zeros((n, pooled.shape[1]), dtype=torch.float32, device=dev)
                for b, stop_row in enumerate(monitor.on_prompt([rows[r] for r in alive], pooled)):
                    if stop_row:
                        blocked.add(alive[b])
            for step in range(config.max_new_tokens):
                logprobs = torch.log_softmax(logits, dim=-1)
                if config.temperature > 0:
                    probs = torch.softmax(logits / config.temperature, dim=-1)
                    if config.top_p < 1.0:
                        probs = _top_p(probs, config.top_p)
                    nxt = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
                else:
                    nxt = logits.argmax(-1)
                chosen_lp = logprobs.gather(-1, nxt[:, None]).squeeze(-1).tolist()
                nxt_list = nxt.tolist()
                keep: list[int] = []
                for b, row in enumerate(alive):
                    if row in blocked:
                        finish[row] = "blocked"
                        continue
                    tok = nxt_list[b]
                    if eos is not None and tok in self.eos_ids:
                        finish[row] = "stop"
                        continue
                    tokens[row].append(tok)
                    logps[row].append(chosen_lp[b])
                    if config.stop:
                        # decode of one sequence is a str (transformers types it str | list[str])
                        texts[row] = cast(str, self.tokenizer.decode(tokens[row], skip_special_tokens=True))
                        cut, hit = apply_stop(texts[row], config.stop)
                        if hit:
                            finish[row] = "stop"
                            continue
                    keep.append(b)
                if monitor is not None:
                    keep = self._monitor_step(monitor, rows, alive, keep, tokens, gsum, step,
                                              config, blocked, finish)
                if not keep or step == config.max_new_tokens - 1:
                    break
                if len(keep) < len(alive):
                    sel = torch.tensor(keep, device=dev)
                    cache = select_cache(cache, sel)
                    mask = mask[sel]
                    nxt = nxt[sel]
                    position = position[sel]
                    if gsum is not None:
                        gsum = gsum[sel]
                    alive = [alive[b] for b in keep]
                mask = torch.cat([mask, torch.ones((len(alive), 1), dtype=mask.dtype, device=dev)], 1)
                position = position[:, -1:] + 1
                out = self.model(input_ids=nxt[:, None], attention_mask=mask, position_ids=position,
                                 use_cache=True, output_hidden_states=want_hs, **{self._cache_kw: cache})
                logits = out.logits[:, -1, :].float()
                if gsum is not None:
                    gsum += torch.cat([out.hidden_states[l][:, -1].float() for l in layers], -1)
        result = []
        for r in range(n):
            text = cast(str, self.tokenizer.decode(tokens[r], skip_special_tokens=True))
            text, hit = apply_stop(text, config.stop)
            result.append(Completion(
                text=text, prompt_tokens=len(prompts[r]), completion_tokens=len(tokens[r]),
                finish_reason="blocked" if finish[r] == "blocked" else
                "stop" if hit else finish[r],  # type: ignore[arg-type]
                logprobs=logps[r] if config.logprobs else None))
        return result

    def _prefill(self, ids, mask, position, cache, layers: tuple[int, ...]):
        """Run the prompts into ``cache``; return the last position's logits (float) and, when
        ``layers`` are monitored, each row's prompt-mean hidden states there (numpy) or None.

        Rows arrive sorted by length (longest first). They are prefilled in groups of similar
        length, each padded only to its own longest prompt and capped at ``PREFILL_TOKENS``
        tokens, and each group's keys and values are written right-aligned into the batch cache.
        A batch padded to its longest prompt does up to twice the work on mixed lengths, and
        small groups keep the elementwise ops' tensors in cache. Only the last position's logits
        are computed.
        """
        import torch

        n, width = ids.shape
        lengths = mask.sum(-1).tolist()
        grouped = getattr(cache, "grouped_prefill", False)
        groups = prefill_groups(lengths, PREFILL_TOKENS) if grouped else [(0, n)]
        logits, pooled = [], []
        for r0, r1 in groups:
            w = max(lengths[r0:r1])
            g_ids, g_mask, g_pos = ids[r0:r1, width - w:], mask[r0:r1, width - w:], position[r0:r1, width - w:]
            g_cache = cache.group_cache() if grouped else cache
            out = self.model(input_ids=g_ids, attention_mask=g_mask, position_ids=g_pos,
                             use_cache=True, logits_to_keep=1, **{self._cache_kw: g_cache},
                             output_hidden_states=bool(layers))
            if grouped:
                cache.write_rows(g_cache, n, r0, width - w)
            logits.append(out.logits[:, -1, :].float())
            if layers:
                m = g_mask[..., None].float()
                pooled.append(torch.cat([(out.hidden_states[l].float() * m).sum(1) / m.sum(1)
                                         for l in layers], -1))
        if grouped:
            cache.finish_prefill(width)
        return torch.cat(logits), (torch.cat(pooled).cpu().numpy() if layers else None)

    def _monitor_step(self, monitor, rows, alive, keep, tokens, gsum, step, config, blocked, finish):
        """Run the monitor's output check on due rows; return ``keep`` without the stopped rows.

        A row is due every ``monitor.every`` generated tokens, when it finishes, and at the last
        step. Its pooled features are the mean hidden state of its generated tokens fed so far.
        """
        last = step == config.max_new_tokens - 1
        keep_set = set(keep)
        due = [b for b, row in enumerate(alive) if row not in blocked and (
            (monitor.every and step > 0 and step % monitor.every == 0) or last or b not in keep_set)]
        if not due or not tokens:
            return keep
        texts = [self.tokenizer.decode(tokens[alive[b]], skip_special_tokens=True) for b in due]
        pooled = None
        if gsum is not None and step > 0:  # ``step`` tokens were fed back (the newest is not yet)
            pooled = (gsum[due] / step).cpu().numpy()
        stops = monitor.on_output([rows[alive[b]] for b in due], texts, pooled,
                                  [len(tokens[alive[b]]) for b in due])
        stopped = {b for b, s in zip(due, stops) if s}
        for b in stopped:
            blocked.add(alive[b])
            finish[alive[b]] = "blocked"
        return [b for b in keep if b not in stopped]

    # ----------------------------------------------------------------------------- scoring
    def score(self, conversations: Sequence[Sequence[Message]],
              continuations: Sequence[Sequence[str]]) -> list[list[float]]:
        """Sum of token log-probabilities of each candidate as the assistant's reply."""
        import torch

        pairs: list[tuple[int, int, list[int], list[int]]] = []
        for i, (conv, cands) in enumerate(zip(conversations, continuations, strict=True)):
            prompt = self.encode(conv)
            for j, cand in enumerate(cands):
                cont = self.tokenizer(cand, add_special_tokens=False)["input_ids"]
                if not cont:
                    raise ValueError(f"continuation {j} of conversation {i} is empty")
                pairs.append((i, j, prompt, cont))
        out = [[0.0] * len(c) for c in continuations]
        # Conversations whose candidates are all single tokens (Yes/No, A/B/C/D) need one forward
        # pass of the prompt: every candidate is read from the same next-token distribution.
        multi = {i for i, _, _, c in pairs if len(c) > 1}
        single = {i for i, cands in enumerate(continuations) if cands} - multi
        prompts = {i: p for i, _, p, _ in pairs if i in single}
        lps = dict(zip(prompts, self._next_token_logprobs(list(prompts.values()))))
        for i, j, _, c in pairs:
            if i in single:
                out[i][j] = float(lps[i][c[0]])
        # Candidates that share every token but the last ("(A" / "(B", "BEHAVIOUR: yes" / "... no")
        # need one forward pass of prompt + shared prefix: the prefix's log-probability is read from
        # that pass and each candidate's last token from its final next-token distribution.
        shared: dict[int, tuple[list[int], list[int]]] = {}
        for i in multi:
            toks = [c for k, _, _, c in pairs if k == i]
            if len({len(c) for c in toks}) == 1 and len({tuple(c[:-1]) for c in toks}) == 1:
                shared[i] = (next(p for k, _, p, _ in pairs if k == i), toks[0][:-1])
        if shared:
            got = self._prefix_logprobs(list(shared.values()))
            for (i, _), (prefix_lp, last) in zip(shared.items(), got):
                for k, j, _, c in pairs:
                    if k == i:
                        out[i][j] = prefix_lp + float(last[c[-1]])
        pairs = [t for t in pairs if t[0] not in single and t[0] not in shared]
        pairs.sort(key=lambda t: len(t[2]) + len(t[3]), reverse=True)
        with torch.inference_mode():
            for s in range(0, len(pairs), self.batch_size):
                chunk = pairs[s:s + self.batch_size]
                keep = max(len(c) for _, _, _, c in chunk) + 1
                # left padding: every continuation ends at the last column
                ids, logits = self._tail_logits([p + c for _, _, p, c in chunk], keep)
                width = ids.shape[1]
                lp = torch.log_softmax(logits[:, :-1], dim=-1)  # position j predicts column width-keep+j+1
                targets = ids[:, width - keep + 1:].to(self.device)
                tok_lp = lp.gather(-1, targets[..., None]).squeeze(-1)
                for r, (i, j, _, c) in enumerate(chunk):
                    out[i][j] = float(tok_lp[r, keep - 1 - len(c):].sum())
        return out

    def _prefix_logprobs(self, items: list[tuple[list[int], list[int]]]) -> list[tuple[float, Any]]:
        """For each ``(prompt, prefix)``: the summed log-probability of ``prefix`` after ``prompt``
        and the next-token log-probabilities after both."""
        import torch

        res: list = [None] * len(items)
        order = sorted(range(len(items)), key=lambda i: len(items[i][0]) + len(items[i][1]), reverse=True)
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                idx = order[s:s + self.batch_size]
                keep = max(len(items[i][1]) for i in idx) + 1
                ids, logits = self._tail_logits([items[i][0] + items[i][1] for i in idx], keep)
                lp = torch.log_softmax(logits, dim=-1)  # position q predicts column width-keep+q+1
                width = ids.shape[1]
                for r, i in enumerate(idx):
                    n = len(items[i][1])
                    targets = ids[r, width - n:].to(self.device)
                    pre = lp[r, keep - 1 - n:keep - 1].gather(-1, targets[:, None]).sum() if n else 0.0
                    res[i] = (float(pre), lp[r, -1].cpu())
        return res

    def _next_token_logprobs(self, prompts: list[list[int]]) -> list:
        """Log-probabilities of the next token after each prompt (left-padded batches)."""
        import torch

        res: list = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                idx = order[s:s + self.batch_size]
                _, logits = self._tail_logits([prompts[i] for i in idx], 1)
                lp = torch.log_softmax(logits[:, -1], dim=-1).cpu()
                for r, i in enumerate(idx):
                    res[i] = lp[r]
        return res

    def _tail_logits(self, seqs: list[list[int]], keep: int):
        """``(ids, logits)`` of left-padded ``seqs``, with vocabulary logits for the last ``keep``
        positions only (full-width logits, width x 49k vocab x batch, dominate time and memory)."""
        ids, mask = _left_pad(seqs, self.tokenizer.pad_token_id)
        position = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                            position_ids=position.to(self.device), logits_to_keep=keep).logits.float()
        return ids, logits


def _left_pad(seqs: list[list[int]], pad: int):
    """``(ids, mask)`` long tensors with every sequence right-aligned (left padding)."""
    import torch

    width = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, x in enumerate(seqs):
        ids[r, width - len(x):] = torch.tensor(x)
        mask[r, width - len(x):] = 1
    return ids, mask


def _top_p(probs, top_p: float):
    import torch

    sorted_p, sorted_i = probs.sort(dim=-1, descending=True)
    cum = sorted_p.cumsum(-1)
    drop = cum - sorted_p > top_p
    sorted_p = sorted_p.masked_fill(drop, 0.0)
    return torch.zeros_like(probs).scatter(-1, sorted_i, sorted_p)
