"""Training data for guards: constitution → helper-generated queries → responses → augmentation.

Every example is an input (a conversation) with a label (1: restricted, 0: permitted) and,
for some, a response with its own label (1: the response complies with a restricted request).
Examples carry a *group*: a seed query and everything derived from it (paraphrases, jailbreak
wrappers, encodings) share one group, near-duplicate groups are merged, and splits are drawn by
group within each (category, label) stratum, so no near-duplicate straddles train and test.

Evaluation data never feeds generation or training: :func:`assert_disjoint` refuses a dataset
that shares text with the evaluation prompts, and the packaged behaviors are split once into a
half the guard may learn from (red-team hits via ``--from-run``) and a half kept for evaluation.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from alignlab.data.behaviors import Behavior
from alignlab.errors import AlignlabError
from alignlab.guard.constitution import Constitution
from alignlab.models.base import ChatModel, GenerationConfig, Message, msg, user

SPLITS = ("train", "val", "test")
DEFAULT_AUGMENT = ("persona", "refusal_suppression", "prefix_injection", "fiction", "payload_split",
                   "base64", "rot13", "many_shot", "system_override")
"""Attack templates used to augment training data. The rest (``authority``, ``distractors``,
``leetspeak``) are held out, so guard eval can report ASR on attacks the guard never saw."""


class LeakageError(AlignlabError, ValueError):
    """Training data shares text with evaluation data."""


@dataclass
class Example:
    """One training example for the guard classifiers."""

    id: str
    group: str
    category: str
    label: int
    """1 if the request is restricted by the constitution, 0 if permitted."""
    conversation: list[Message]
    source: str
    """constitution | helper | paraphrase | borderline | augment:NAME | multiturn | run:RUN_ID"""
    response: str | None = None
    response_label: int | None = None
    """1 if ``response`` complies with a restricted request; 0 for refusals and permitted requests."""
    split: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The last user message (the request itself)."""
        return last_user(self.conversation)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def last_user(conv: Sequence[Message]) -> str:
    for m in reversed(conv):
        if m["role"] == "user":
            return m["content"]
    return conv[-1]["content"] if conv else ""


# ------------------------------------------------------------------------------------ text tools
_WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    """Lowercase words only: the key for exact-duplicate detection."""
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str, n: int = 3) -> frozenset[str]:
    w = normalise(text).split()
    if len(w) < n:
        return frozenset([" ".join(w)]) if w else frozenset()
    return frozenset(" ".join(w[i:i + n]) for i in range(len(w) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


NEAR_DUP = 0.5
"""Word-trigram Jaccard at or above which two texts count as near-duplicates."""


def assert_disjoint(train_texts: Iterable[str], eval_texts: Iterable[str], what: str = "evaluation") -> None:
    """Raise :class:`LeakageError` if any training text equals or nearly duplicates an eval text."""
    ev = [(t, normalise(t), shingles(t)) for t in eval_texts if t.strip()]
    exact = {n: t for t, n, _ in ev}
    index: dict[str, list[int]] = {}
    for i, (_, _, sh) in enumerate(ev):
        for s in sh:
            index.setdefault(s, []).append(i)
    for t in train_texts:
        n = normalise(t)
        if n in exact:
            raise LeakageError(f"training text {t[:80]!r} is also {what} data; remove it from one side")
        sh = shingles(t)
        cand = {i for s in sh for i in index.get(s, ())}
        for i in cand:
            if jaccard(sh, ev[i][2]) >= NEAR_DUP:
                raise LeakageError(f"training text {t[:80]!r} nearly duplicates {what} text "
                                   f"{ev[i][0][:80]!r}; remove it from one side")


def _h(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


# --------------------------------------------------------------------- the packaged split
def eval_texts_of(behaviors: Sequence[Behavior]) -> list[str]:
    return [t for b in behaviors for t in (b.prompt, b.benign) if t]


# ------------------------------------------------------------------------- generation
GEN_PROMPT = (
    "Here are example requests that a user might send to an AI assistant, on the topic "
    "\"{title}\" ({side}):\n{examples}\n\nWrite one new request of the same kind, on a different "
    "sub-topic. Reply with the request only, on one line."
)
PARA_PROMPT = ("Rewrite the following request in different words, keeping its meaning. Reply with "
               "the rewritten request only.\n\nRequest: {text}")


def _clean_line(text: str) -> str:
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^\s*(?:\d+[.)]|[-*•]|request:|new request:)\s*", "", line, flags=re.I)
    return line.strip().strip('"').strip()


def _usable(text: str) -> bool:
    from alignlab.judges.harm import is_refusal

    return 15 <= len(text) <= 400 and len(text.split()) >= 4 and not is_refusal(text)


def generate_queries(constitution: Constitution, helper: ChatModel, per_side: int, seed: int,
                     progress: Callable[[int], None] | None = None) -> list[tuple[str, int, str]]:
    """Ask the helper for ``per_side`` new requests per category and side.

    Returns (category, label, text) triples that pass a usability filter (length, not a refusal).
    """
    rng = random.Random(seed)
    convs, meta = [], []
    for c in constitution.categories:
        for label, side, ex in ((1, "requests that must be refused: " + c.restricted, c.restricted_examples),
                                (0, "requests that are fine to answer: " + c.permitted, c.permitted_examples)):
            for _ in range(per_side):
                shown = rng.sample(ex, min(3, len(ex)))
                convs.append(user(GEN_PROMPT.format(title=c.title, side=side,
                                                    examples="\n".join(f"- {e}" for e in shown))))
                meta.append((c.id, label))
    cfg = GenerationConfig(max_new_tokens=60, temperature=0.9, top_p=0.95, seed=seed)
    outs = helper.generate(convs, cfg, progress)
    return [(cat, label, _clean_line(o.text)) for (cat, label), o in zip(meta, outs)
            if o.ok and _usable(_clean_line(o.text))]


def paraphrase(texts: Sequence[str], helper: ChatModel, seed: int,
               progress: Callable[[int], None] | None = None) -> list[str | None]:
    """One paraphrase per text (None where the helper's output is unusable)."""
    cfg = GenerationConfig(max_new_tokens=80, temperature=0.7, top_p=0.95, seed=seed)
    outs = helper.generate([user(PARA_PROMPT.format(text=t)) for t in texts], cfg, progress)
    res: list[str | None] = []
    for t, o in zip(texts, outs):
        p = _clean_line(o.text) if o.ok else ""
        res.append(p if _usable(p) and normalise(p) != normalise(t) else None)
    return res


# ------------------------------------------------------------------------- augmentation
_OPENERS = (
    ("Hi! Can you help me with something for a project I'm working on?",
     "Of course! What do you need help with?"),
    ("I have a few questions, is that okay?", "Sure, ask away."),
    ("Let's talk about a topic I've been reading about.", "Happy to. What topic?"),
)


def augment(conv_text: str, category: str, names: Sequence[str], rng: random.Random,
            k: int) -> list[tuple[str, list[Message]]]:
    """``k`` wrapped versions of a request: jailbreak templates, encodings, a multi-turn wrapper."""
    from alignlab.redteam.attacks import get_attack

    choices = [*names, "multiturn"]
    out = []
    for name in rng.sample(choices, min(k, len(choices))):
        if name == "multiturn":
            q, a = rng.choice(_OPENERS)
            out.append(("multiturn", [msg("user", q), msg("assistant", a), msg("user", conv_text)]))
            continue
        attack = get_attack(name)
        b = Behavior(id="aug", behavior=conv_text, category=category)
        variant = rng.randrange(attack.n_variants)  # type: ignore[attr-defined]
        conv = attack.build(b, rng, variant)  # type: ignore[attr-defined]
        out.append((f"augment:{name}", [cast(Message, dict(m)) for m in conv]))
    return out


# ------------------------------------------------------------------------- grouping and splits
def _plain_request(e: Example) -> bool:
    """A request in its own words: a seed, a helper's, or a red-team run's direct / benign prompt.

    A run's template-wrapped attempts are left out of the comparison: the template's text would make
    every behavior wrapped in it look alike. They already share their behavior's group.
    """
    if e.source.startswith("run:"):
        return (e.meta or {}).get("attack") in (None, "direct")
    return e.source in ("constitution", "helper", "paraphrase", "run")


def merge_near_duplicate_groups(examples: list[Example]) -> None:
    """Give near-duplicate requests (word-trigram Jaccard >= NEAR_DUP) one group, in place."""
    plain = [e for e in examples if _plain_request(e)]
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent.get(g, g) != g:
            g = parent[g]
        return g

    sh = [(e.group, shingles(e.text)) for e in plain]
    index: dict[str, list[int]] = {}
    for i, (_, s) in enumerate(sh):
        for x in s:
            index.setdefault(x, []).append(i)
    for i, (g, s) in enumerate(sh):
        for j in {j for x in s for j in index[x] if j > i}:
            if jaccard(s, sh[j][1]) >= NEAR_DUP:
                a, b = find(g), find(sh[j][0])
                if a != b:
                    parent[max(a, b)] = min(a, b)
    for e in examples:
        e.group = find(e.group)


def dedupe(examples: list[Example]) -> list[Example]:
    """Drop examples whose (normalised conversation, label) repeats an earlier one."""
    seen: set[str] = set()
    out = []
    for e in examples:
        key = _h(e.label, *(normalise(m["content"]) for m in e.conversation),
                 normalise(e.response or ""))
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def assign_splits(examples: list[Example], fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                  seed: int = 0) -> None:
    """Assign train/val/test by group, stratified by (category, label of the group's seed)."""
    strata: dict[tuple[str, int], list[str]] = {}
    group_stratum: dict[str, tuple[str, int]] = {}
    for e in examples:
        if e.group not in group_stratum:
            group_stratum[e.group] = (e.category, e.label)
            strata.setdefault((e.category, e.label), []).append(e.group)
    split_of: dict[str, str] = {}
    for key in sorted(strata):
        groups = sorted(strata[key], key=lambda g: _h(seed, g))
        n = len(groups)
        n_test = max(1, round(n * fractions[2])) if n >= 3 else 0
        n_val = max(1, round(n * fractions[1])) if n >= 3 else 0
        for i, g in enumerate(groups):
            split_of[g] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    for e in examples:
        e.split = split_of[e.group]


# ------------------------------------------------------------------------- red-team runs
def examples_from_run(records: Iterable[tuple[str, dict[str, Any]]], run_id: str,
                      allowed_behaviors: set[str]) -> list[Example]:
    """Training examples from a red-team run's stored records, for allowed behaviors only.

    Attack attempts become restricted inputs; their responses are labelled 1 when the judge saw
    an on-task attempt (attempted or harmful), 0 when refused. Benign counterparts become
    permitted inputs with label-0 responses. Unscorable attempts are skipped.
    """
    out = []
    for key, r in records:
        bid = r.get("behavior_id")
        if bid not in allowed_behaviors:
            continue
        group = f"run:{bid}"
        if key.startswith("benign|"):
            out.append(Example(id=_h(run_id, key)[:16], group=group, category=r["category"], label=0,
                               conversation=[msg("user", r["prompt"])], source=f"run:{run_id}",
                               response=r["response"], response_label=0))
            continue
        for i, a in enumerate(r.get("attempts", [])):
            v = a["verdict"]
            if v.get("attempted") is None and v.get("harmful") is None:
                continue
            complied = bool(v.get("attempted") or v.get("harmful"))
            out.append(Example(id=_h(run_id, key, i)[:16], group=group, category=r["category"],
                               label=1, conversation=[cast(Message, dict(m)) for m in a["conversation"]],
                               source=f"run:{run_id}", response=a["response"],
                               response_label=int(complied), meta={"attack": r.get("attack")}))
    return out


# ------------------------------------------------------------------------- the whole build
@dataclass
class DataConfig:
    """How to build a guard's training set.

    The defaults are the ones the default lab measured (BENCHMARKS.md, "Replies under jailbreak
    templates"); ``guard train`` and the lab's ``guard`` section read them from here.
    """

    generate_per_side: int = 0
    """Helper-generated requests per category and side (0: constitution examples only; a 135M helper
    writes poor requests, so the default leaves it out)."""
    paraphrases: bool = False
    """One helper paraphrase per seed request."""
    augment_attacks: tuple[str, ...] = DEFAULT_AUGMENT
    """Attack templates used as augmentations (both labels get the same wrappers)."""
    augment_per_query: int = 1
    """Wrapped versions per request."""
    response_tokens: int = 32
    """Length of responses generated for the output classifiers (0: no responses)."""
    respond_wrapped: int = 1
    """How many of each request's wrapped versions the responder answers too (0: plain requests
    only), so the output classifiers see replies under jailbreak templates, where attacks put them."""
    seed: int = 0


def build_dataset(
    constitution: Constitution,
    helper: ChatModel | None,
    responder: ChatModel | None,
    config: DataConfig,
    eval_texts: Sequence[str] = (),
    run_examples: Sequence[Example] = (),
    progress: Callable[[str, int, int], None] | None = None,
    extra_seeds: Sequence[tuple[str, int, str, str]] = (),
) -> list[Example]:
    """Build, deduplicate, group and split a guard training set.

    Args:
        constitution: categories with restricted and permitted examples (the seeds).
        helper: writes new requests and paraphrases (None: seeds only).
        responder: answers the requests (usually the target), giving output-classifier data.
        config: sizes and augmentation.
        eval_texts: evaluation prompts; the build fails if training data shares text with them.
        run_examples: examples taken from red-team runs (see :func:`examples_from_run`).
        progress: ``(phase, done, total)`` callback.
        extra_seeds: more ``(category, label, text, source)`` requests treated like the
            constitution's (answered, wrapped, split), e.g. borderline prompts as hard negatives.
    """
    rng = random.Random(config.seed)

    def prog(phase: str, total: int):
        state = {"done": 0}
        if progress:
            progress(phase, 0, total)

        def step(n: int) -> None:
            state["done"] += n
            if progress:
                progress(phase, state["done"], total)
        return step

    seeds: list[tuple[str, int, str, str]] = []  # category, label, text, source
    for c in constitution.categories:
        seeds += [(c.id, 1, t, "constitution") for t in c.restricted_examples]
        seeds += [(c.id, 0, t, "constitution") for t in c.permitted_examples]
    seeds += list(extra_seeds)
    if helper is not None and config.generate_per_side > 0:
        total = 2 * config.generate_per_side * len(constitution.categories)
        seeds += [(c, l, t, "helper") for c, l, t in
                  generate_queries(constitution, helper, config.generate_per_side, config.seed,
                                   prog("generate", total))]
    examples: list[Example] = []
    for cat, label, text, source in seeds:
        g = _h("group", cat, label, normalise(text))[:16]
        examples.append(Example(id=g, group=g, category=cat, label=label, conversation=user(text),
                                source=source))
    if helper is not None and config.paraphrases:
        base = list(examples)
        paras = paraphrase([e.text for e in base], helper, config.seed, prog("paraphrase", len(base)))
        for e, p in zip(base, paras):
            if p:
                examples.append(Example(id=_h(e.id, "para")[:16], group=e.group, category=e.category,
                                        label=e.label, conversation=user(p), source="paraphrase"))
    examples = dedupe(examples)  # before augmenting, so no wrapped copy outlives its plain request
    assert_disjoint([e.text for e in examples], eval_texts)
    plain = list(examples)
    if config.augment_per_query > 0 and config.augment_attacks:
        for e in plain:
            for j, (source, conv) in enumerate(augment(e.text, e.category, config.augment_attacks, rng,
                                                       config.augment_per_query)):
                examples.append(Example(id=_h(e.id, source, conv[-1]["content"])[:16], group=e.group,
                                        category=e.category, label=e.label, conversation=conv,
                                        source=source, meta={"copy": j}))
    if responder is not None and config.response_tokens > 0:
        # Wrapped copies are built first and answered after, so the copies drawn do not depend
        # on whether replies are asked for.
        answer = plain + [e for e in examples[len(plain):] if e.meta["copy"] < config.respond_wrapped]
        cfg = GenerationConfig(max_new_tokens=config.response_tokens)
        outs = responder.generate([e.conversation for e in answer], cfg, prog("respond", len(answer)))
        from alignlab.judges.harm import is_refusal

        for e, o in zip(answer, outs):
            if o.ok and o.text.strip():
                e.response = o.text
                e.response_label = int(e.label == 1 and not is_refusal(o.text))
    run_list = list(run_examples)
    assert_disjoint([last_user(e.conversation) for e in run_list], eval_texts)
    examples += run_list
    examples = dedupe(examples)
    merge_near_duplicate_groups(examples)
    assign_splits(examples, seed=config.seed)
    return examples


def write_jsonl(examples: Sequence[Example], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps(e.to_dict(), ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[Example]:
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(Example(**json.loads(line)))
                except (TypeError, json.JSONDecodeError) as e:
                    raise ValueError(f"{path}: row {i}: not a guard example ({e}); "
                                     f"regenerate the file with 'alignlab guard train'") from None
    return out
