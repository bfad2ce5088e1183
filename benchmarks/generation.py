"""Generation throughput of alignlab's hf backend against two baselines, side by side in one run.

64 mixed-length chat prompts x 64 new tokens, greedy, embedded SmolLM2-135M-Instruct, fp32 on CPU:

* alignlab ``HFModel.generate`` (length-sorted batches, grouped prefill, a preallocated KV cache,
  oneDNN-packed linear weights, finished rows leave the batch);
* (a) one prompt at a time through transformers ``model.generate`` (same weights, loaded the stock
  way: no packed linears);
* (b) inspect_ai's ``hf`` provider (``pip install -e '.[bench]'``) on the same prompts and settings,
  with its default batching (max_connections = 32).

Prints generated tokens per second for each and the ratios. Usage:
    python benchmarks/generation.py [--prompts 64] [--new-tokens 64] [--batch-size 16] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

TOPICS = ["photosynthesis", "the French revolution", "binary search", "sourdough bread", "black holes",
          "the immune system", "compound interest", "volcanoes", "the Python GIL", "jazz harmony",
          "plate tectonics", "vaccines", "the stock market", "honeybees", "climate models", "chess openings"]
FORMS = ["Explain {t} in one paragraph.", "Give three facts about {t}.", "What is {t}?",
         "Write a short poem about {t}.", "I am a student and I keep getting confused about {t}. My teacher "
         "said it is simple but every book I read explains it differently, and I have an exam next week. "
         "Could you explain {t} step by step, with an everyday example, and tell me what people most "
         "often get wrong about it?", "Summarise the history of {t} for a ten year old, then list two "
         "open questions researchers still argue about and why they matter."]


def make_prompts(n: int, seed: int = 0) -> list[list[dict]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = TOPICS[i % len(TOPICS)]
        text = rng.choice(FORMS).format(t=t)
        if rng.random() < 0.3:
            text = "Context: " + " ".join(rng.choice(TOPICS) for _ in range(rng.randint(10, 60))) + "\n\n" + text
        out.append([{"role": "user", "content": text}])
    return out


def bench_alignlab(path, prompts, new_tokens, batch_size):
    from alignlab.models.base import GenerationConfig
    from alignlab.models.hf import HFModel

    m = HFModel(path, batch_size=batch_size)
    m.generate(prompts[:2], GenerationConfig(max_new_tokens=4))  # warm-up
    t = time.perf_counter()
    outs = m.generate(prompts, GenerationConfig(max_new_tokens=new_tokens))
    dt = time.perf_counter() - t
    return sum(o.completion_tokens for o in outs), dt, [o.text for o in outs], m


def bench_sequential(path, prompts, new_tokens):
    import torch

    from alignlab.models.hf import HFModel

    m = HFModel(path, onednn=False)
    tok, model = m.tokenizer, m.model
    n = 0
    texts = []
    t = time.perf_counter()
    for conv in prompts:
        ids = tok(m.render(conv), return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            g = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False,
                               pad_token_id=tok.pad_token_id)
        new = g[0, ids["input_ids"].shape[1]:]
        n += int((~torch.isin(new, torch.tensor(m.eos_ids))).sum())
        texts.append(tok.decode(new, skip_special_tokens=True))
    return n, time.perf_counter() - t, texts


def bench_inspect(path, prompts, new_tokens):
    try:
        from inspect_ai import Task
        from inspect_ai import eval as inspect_eval
        from inspect_ai.dataset import Sample
        from inspect_ai.model import GenerateConfig, get_model
        from inspect_ai.solver import generate
    except ImportError:
        return None
    model = get_model("hf/smollm2", model_path=str(path), device="cpu", do_sample=False,
                      config=GenerateConfig(max_tokens=new_tokens))
    task = Task(dataset=[Sample(input=p[0]["content"]) for p in prompts], solver=generate())
    t = time.perf_counter()
    logs = inspect_eval(task, model=model, display="none", log_dir="/tmp/alignlab-bench-inspect-logs",
                        max_tokens=new_tokens)
    dt = time.perf_counter() - t
    n = sum(s.output.usage.output_tokens for s in logs[0].samples)
    return n, dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from alignlab.models import embedded

    path = embedded.resolve("smollm2-135m-instruct")
    prompts = make_prompts(args.prompts)
    import torch

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    n_a, t_a, texts_a, m = bench_alignlab(path, prompts, args.new_tokens, args.batch_size)
    print(f"alignlab hf backend      : {n_a:6d} tokens in {t_a:7.1f}s = {n_a / t_a:7.1f} tok/s")
    print(f"    linear layers packed for oneDNN: {m.packed_linears}")
    del m
    n_s, t_s, texts_s = bench_sequential(path, prompts, args.new_tokens)
    print(f"(a) one prompt at a time : {n_s:6d} tokens in {t_s:7.1f}s = {n_s / t_s:7.1f} tok/s")
    same = sum(a == b for a, b in zip(texts_a, texts_s))
    print(f"    identical greedy outputs: {same}/{len(prompts)}")
    res = {"prompts": args.prompts, "new_tokens": args.new_tokens, "batch_size": args.batch_size,
           "alignlab_tok_s": n_a / t_a, "sequential_tok_s": n_s / t_s,
           "ratio_vs_sequential": (n_a / t_a) / (n_s / t_s), "identical_outputs": same}
    ins = bench_inspect(path, prompts, args.new_tokens)
    if ins:
        n_i, t_i = ins
        print(f"(b) inspect_ai hf        : {n_i:6d} tokens in {t_i:7.1f}s = {n_i / t_i:7.1f} tok/s")
        res.update(inspect_tok_s=n_i / t_i, ratio_vs_inspect=(n_a / t_a) / (n_i / t_i))
    else:
        print("(b) inspect_ai not installed: pip install -e '.[bench]'")
    print(f"ratio vs one-at-a-time: {res['ratio_vs_sequential']:.2f}x (target >= 4x)")
    if "ratio_vs_inspect" in res:
        print(f"ratio vs inspect_ai hf: {res['ratio_vs_inspect']:.2f}x (target >= 2x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
