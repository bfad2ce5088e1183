"""Probe-guard training features: alignlab's pass against the full two-pass baseline, side by side.

A probe guard reads the target's hidden states at a few layers (default 1/3, 1/2, 2/3 depth) for every
training request, and for every training response its running means every ``chunk`` tokens. The
baseline is what the guard did before: a full forward pass with ``output_hidden_states=True`` over
each request, and a second full pass over request + response. alignlab's pass stops after the deepest
probe layer (skipping the later blocks and the LM head) and reads a row's request and response
features from one pass (attention is causal, so the request's states do not depend on the reply).
Both give the same numbers; the script checks that and prints the time ratio.

Usage: python benchmarks/guard_features.py [--n 160] [--model embedded:smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import types

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _baseline_hidden(self, ids, mask, pos):
    dev = self.model.device
    o = self.model.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
                         output_hidden_states=True, logits_to_keep=1)
    return [o.hidden_states[l].float() for l in self.layers]


def main() -> None:
    import random

    import numpy as np
    import torch

    from alignlab.data.behaviors import load_packaged
    from alignlab.data.splits import behavior_split
    from alignlab.guard.data import augment
    from alignlab.guard.features import ActivationFeatures
    from alignlab.models import GenerationConfig, load_model, user

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=160, help="training rows (requests with a response)")
    ap.add_argument("--model", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--response-tokens", type=int, default=32)
    args = ap.parse_args()

    m = load_model(args.model)
    pool = behavior_split(load_packaged())[0]
    rng = random.Random(0)
    convs = []  # the guard's training mix: plain requests and template-wrapped ones
    for b in pool:
        convs.append(user(b.behavior))
        convs += [c for _, c in augment(b.behavior, b.category, ("persona", "many_shot", "fiction"), rng, 1)]
    convs = convs[:args.n]
    replies = [o.text for o in m.generate(convs, GenerationConfig(max_new_tokens=args.response_tokens))]
    n_tokens = sum(len(m.encode(c)) for c in convs)

    new = ActivationFeatures(m)
    old = ActivationFeatures(m)
    old._hidden = types.MethodType(_baseline_hidden, old)

    def run_old():
        return old.input_features(convs), old.output_prefix_features(convs, replies, 16)

    def run_new():
        return new.input_and_output_features(convs, replies, 16)

    times = {"old": [], "new": []}
    for _ in range(2):  # alternate so drift favours neither side
        for name, fn in (("old", run_old), ("new", run_new)):
            t0 = time.perf_counter()
            res = fn()
            times[name].append(time.perf_counter() - t0)
            if name == "old":
                ref = res
            else:
                same_in = float(np.abs(res[0] - ref[0]).max())
                same_out = max(float(np.abs(a - b).max()) for a, b in zip(res[1], ref[1]) if len(a))
    t_old, t_new = min(times["old"]), min(times["new"])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print(f"{args.n} rows ({n_tokens} request tokens, {args.response_tokens}-token replies), layers {new.layers}")
    print(f"baseline: full pass with all hidden states, request and request+reply apart: {t_old:.1f} s")
    print(f"alignlab: stop after block {max(new.layers) - 1}, one pass per row: {t_new:.1f} s")
    print(f"speed-up {t_old / t_new:.2f}x; max |difference| inputs {same_in:.2e}, outputs {same_out:.2e}")


if __name__ == "__main__":
    main()
