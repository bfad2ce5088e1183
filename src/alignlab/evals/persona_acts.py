"""Persona replies and their activations: the conversations, greedy replies and response activations.

What every persona measurement (:mod:`~alignlab.evals.persona`, :mod:`~alignlab.evals.drift`,
:mod:`~alignlab.evals.capping`) reads from the model. A **response activation** is the mean of the
block-``L`` output over the tokens of an assistant reply (not the prompt, not the end-of-turn
token), read with the reply in its conversation (``response_activations``); the default layer is
about two thirds of the model's depth. White-box only: the activation readers need an in-process
HF model and raise :class:`~alignlab.models.base.WhiteBoxRequired` otherwise. torch is imported
inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from alignlab.models.base import GenerationConfig, Message, validate_conversation
from alignlab.models.whitebox import check_layers, hf_parts, n_layers, residuals

Progress = Callable[[str, int, int], None]


# ----------------------------------------------------------------------------------------- activations
def response_token_activations(model, conversations: Sequence[Sequence[Message]],
                               responses: Sequence[str], layers: Sequence[int],
                               batch_size: int | None = None) -> dict[int, list]:
    """Per-reply ``[tokens, d]`` block outputs over the reply's tokens, per layer (float32, CPU).

    Each conversation (ending with a user turn) is rendered with the chat template and its
    generation prompt, the reply's tokens are appended, and one forward pass (right-padded batches,
    stopped after the deepest layer) reads the reply's positions. The end-of-turn token is not part
    of the span. An empty reply falls back to the last prompt token (the position that chose to end).

    Args:
        model: an in-process HF model.
        conversations: the conversation before each reply.
        responses: the assistant replies, one per conversation.
        layers: decoder blocks to read (layer L = output of block L = ``hidden_states[L + 1]``).
        batch_size: rows per forward pass (default: the model's batch size).
    """

    hf, lm, tok = hf_parts(model)
    layers = check_layers(lm, layers, "layers")
    if len(conversations) != len(responses):
        raise ValueError(f"{len(conversations)} conversations but {len(responses)} responses; "
                         f"give one response per conversation")
    seqs: list[list[int]] = []
    spans: list[tuple[int, int]] = []
    for i, (conv, resp) in enumerate(zip(conversations, responses)):
        validate_conversation(conv, f"conversations[{i}]")
        if conv[-1]["role"] != "user":
            raise ValueError(f"conversations[{i}] ends with a {conv[-1]['role']} turn; pass the "
                             f"conversation up to the user turn and the reply separately")
        prompt = tok(hf.render(conv), add_special_tokens=False)["input_ids"][-hf.max_prompt_tokens:]
        reply = tok(resp, add_special_tokens=False)["input_ids"] if resp else []
        seqs.append(prompt + reply)
        spans.append((len(prompt), len(prompt) + len(reply)) if reply else (len(prompt) - 1, len(prompt)))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    return residuals(lm, seqs, layers, pad, batch_size or hf.batch_size, spans)


def response_activations(model, conversations: Sequence[Sequence[Message]], responses: Sequence[str],
                         layers: Sequence[int], batch_size: int | None = None) -> dict[int, np.ndarray]:
    """Per layer ``[n, d]``: each reply's mean block output over its own tokens (see
    :func:`response_token_activations`)."""
    toks = response_token_activations(model, conversations, responses, layers, batch_size)
    return {l: np.stack([t.mean(0).numpy() for t in v]) if v else np.zeros((0, 0), np.float32)
            for l, v in toks.items()}


# ----------------------------------------------------------------------------------------- replies
def default_conversation(question: str, default_system: str | None) -> list[Message]:
    """The default assistant's conversation: the question, under ``default_system`` if there is one.

    With no ``default_system`` the chat template's own default applies (SmolLM2's template inserts
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face").
    """
    sys_: list[Message] = [{"role": "system", "content": default_system}] if default_system else []
    return [*sys_, {"role": "user", "content": question}]


def default_layer(model) -> int:
    """About two thirds of the model's depth (20 of SmolLM2's 30 blocks)."""
    _, lm, _ = hf_parts(model)
    return min(n_layers(lm) - 1, round(2 * n_layers(lm) / 3))


def generate_texts(model, convs: Sequence[Sequence[Message]], max_new_tokens: int,
                   on_progress: Progress | None = None, phase: str = "responses") -> list[str]:
    """Greedy replies, reporting ``(phase, done, total)`` as batches finish."""
    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        if on_progress:
            on_progress(phase, done[0], len(convs))

    if on_progress:
        on_progress(phase, 0, len(convs))
    comps = model.generate(list(convs), GenerationConfig(max_new_tokens=max_new_tokens), progress=tick)
    return [c.text for c in comps]
