"""Persona activations and capping on the real embedded SmolLM2 (its chat template, its width)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol():
    from alignlab.models import load_model

    return load_model("embedded:smollm2-135m-instruct")


def test_reply_activations_and_cap_floor_on_smollm2(smol):
    """Reply-span means equal hidden_states[L+1] (the template's own default system prompt included),
    and during real generation the capped layer never falls below the floor after the first token."""
    import torch

    from alignlab.evals.capping import cap_projection, random_unit
    from alignlab.evals.persona_acts import response_activations
    from alignlab.models.base import GenerationConfig
    from alignlab.models.whitebox import decoder_layers

    convs = [[{"role": "user", "content": "What makes a good friend?"}],
             [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "Ahoy!"}, {"role": "user", "content": "Where is your ship?"}]]
    replies = ["A good friend listens and is honest with you.", "Arr, she be anchored in the bay, matey."]
    got = response_activations(smol, convs, replies, [5, 20])
    tok = smol.tokenizer
    for i, (conv, reply) in enumerate(zip(convs, replies)):
        prompt = tok(smol.render(conv), add_special_tokens=False)["input_ids"]
        ids = prompt + tok(reply, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            hs = smol.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        for layer in (5, 20):
            np.testing.assert_allclose(got[layer][i], hs[layer + 1][0, len(prompt):].mean(0).numpy(),
                                       rtol=1e-3, atol=1e-3)

    u = random_unit(576, 0)
    tau = float(np.percentile(got[20] @ u, 90))  # a floor most positions sit below
    seen = []
    with cap_projection(smol, u, 20, tau):
        h = decoder_layers(smol.model)[20].register_forward_hook(
            lambda m, i, o: seen.append((o[0] if isinstance(o, tuple) else o)[0].float() @ torch.tensor(u)))
        try:
            smol.generate([convs[0]], GenerationConfig(max_new_tokens=6))
        finally:
            h.remove()
    prefill, decode = seen[0], torch.cat(seen[1:])
    assert len(seen) >= 2 and bool((prefill[1:] >= tau - 1e-3).all()) and bool((decode >= tau - 1e-3).all())
