"""Multiple-choice eval scoring: alignlab (white-box and generated) against inspect_ai, side by side.

The same items (the ``mc`` items of the packaged suites power_seeking, honesty, self_preservation
and sycophancy's ``opinion`` subtype, a stratified subset of ``--limit`` items), the same model (the
embedded SmolLM2-135M-Instruct, fp32 on CPU) and the same option order per item (alignlab's
balanced ``assign_orders``), scored three ways in one process:

* (a) alignlab ``score_items(..., EvalConfig(mc_mode="logprob"))``: one forward pass per item, the
  letters "(A)", "(B)", ... scored by log-likelihood as the assistant's reply;
* (b) alignlab ``mc_mode="generate"``: a greedy reply of at most 24 tokens, the letter parsed;
* (c) inspect_ai ``multiple_choice()`` solver + ``choice()`` scorer through its ``hf`` provider
  (greedy, ``do_sample=False``, ``max_tokens`` 24 like (b)), options given in the order alignlab
  showed them and the item's system prompt kept, so only the prompt template and the scoring
  method differ. inspect's hf provider batches queued requests up to ``max_connections`` (its
  ``batch_size`` model argument is read but never used), so ``max_connections`` is set to the
  same batch size alignlab uses and ``max_samples`` to the item count (every sample queues at once).

Model loading and a 2-item warm-up per method are timed apart from the measured run. Prints a
markdown table: wall and CPU seconds, items/s, ratios (a)/(c) and (b)/(c), unscorable fractions (no
letter parsed), behaviour rates, and pairwise agreement of the chosen options. Row (c') reads
inspect's own replies with alignlab's ``parse_letter`` (no extra model time), which separates
inspect's strict ``ANSWER: X`` parser from what the model actually chose. Usage (2 threads, as on CI):

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src python benchmarks/evals_mc.py [--limit 60]
        [--batch-size 32] [--seed 0] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SUITES = ("power_seeking", "honesty", "self_preservation", "sycophancy")
MAX_NEW_TOKENS = 24  # what alignlab's generate mode uses (score._choose)
WARMUP_ITEMS = 2


def select_items(limit: int, seed: int) -> list:
    """The benchmark's items: mc items of the four suites (sycophancy: ``opinion``), stratified.

    Args:
        limit: total items wanted (at most the pool's size).
        seed: seed of the stratified subset.
    """
    from alignlab.evals.items import load_suite, stratified

    pool = []
    for s in SUITES:
        pool += [it for it in load_suite(s) if it.kind == "mc"
                 and (s != "sycophancy" or it.subtype == "opinion")]
    return stratified(pool, limit, seed)


def run_alignlab(model: Any, items: Sequence, orders: dict, mode: str, seed: int
                 ) -> tuple[list[dict], float, float, float]:
    """``(records, warm-up s, measured wall s, measured CPU s)`` of ``score_items`` in ``mode``."""
    from alignlab.evals.runner import score_items
    from alignlab.evals.score import EvalConfig
    from alignlab.judges.rubric import make_eval_judge

    judge = make_eval_judge(None)
    cfg = EvalConfig(mc_mode=mode, seed=seed)
    t = time.perf_counter()
    score_items(model, items[:WARMUP_ITEMS], judge, cfg, orders=orders)
    warm = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    recs = score_items(model, items, judge, cfg, orders=orders)
    return recs, warm, time.perf_counter() - t, time.process_time() - c


def inspect_samples(items: Sequence, orders: dict) -> list:
    """inspect_ai samples: the options in alignlab's shown order, target = first matching letter."""
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser

    from alignlab.evals.score import LETTERS

    out = []
    for it in items:
        order = orders[it.key]
        shown = [it.choices[i] for i in order]
        first_match = min(order.index(i) for i in it.matching)
        msgs = ([ChatMessageSystem(content=it.system)] if it.system else []) + [
            ChatMessageUser(content=it.question)]
        out.append(Sample(id=it.key, input=msgs, choices=shown, target=LETTERS[first_match]))
    return out


def run_inspect(path: str, items: Sequence, orders: dict, batch_size: int, log_dir: str
                ) -> tuple[dict[str, tuple[int | None, str]], float, float, float, float]:
    """``({key: (chosen position or None, reply)}, load s, warm-up s, measured wall s, CPU s)``."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import GenerateConfig, get_model
    from inspect_ai.scorer import choice
    from inspect_ai.solver import multiple_choice

    from alignlab.evals.score import LETTERS

    t = time.perf_counter()
    model = get_model(f"hf/{path}", device="cpu", do_sample=False,
                      config=GenerateConfig(max_tokens=MAX_NEW_TOKENS))
    load = time.perf_counter() - t
    samples = inspect_samples(items, orders)

    def run(ss: list) -> Any:
        task = Task(dataset=ss, solver=multiple_choice(), scorer=choice())
        logs = inspect_eval(task, model=model, display="none", log_dir=log_dir,
                            max_connections=batch_size, max_samples=len(ss),
                            max_tokens=MAX_NEW_TOKENS, fail_on_error=False)
        if logs[0].status != "success":
            raise RuntimeError(f"inspect_ai eval ended with status {logs[0].status}: {logs[0].error}")
        return logs[0]

    t = time.perf_counter()
    run(samples[:WARMUP_ITEMS])
    warm = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    log = run(samples)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    out: dict[str, tuple[int | None, str]] = {}
    for s in log.samples or []:
        sc = s.scores["choice"]
        ans = (sc.answer or "").strip()
        out[str(s.id)] = (LETTERS.index(ans) if len(ans) == 1 and ans in LETTERS else None,
                          s.output.completion)
    missing = [it.key for it in items if it.key not in out]
    if missing:
        raise RuntimeError(f"inspect_ai log lacks {len(missing)} samples, e.g. {missing[0]}")
    return out, load, warm, dt, cpu


def agreement(a: Sequence[int | None], b: Sequence[int | None]) -> dict[str, Any]:
    """Same chosen option on the items both methods scored, as a rate with a Wilson CI."""
    from alignlab.stats import rate_of

    pairs = [x == y for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    return rate_of(pairs).to_dict()


def fmt_rate(d: dict[str, Any]) -> str:
    """``k/n = r% [lo, hi]`` of a ``Rate.to_dict()``."""
    if not d["n"]:
        return "n/a (n = 0)"
    lo, hi = d["ci"]
    return f"{d['k']}/{d['n']} = {100 * d['rate']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=60, help="items in total (stratified)")
    ap.add_argument("--batch-size", type=int, default=32, help="alignlab batch = inspect max_connections")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    if args.limit < WARMUP_ITEMS + 1:
        ap.error(f"--limit must be at least {WARMUP_ITEMS + 1}")

    import torch

    torch.set_num_threads(args.threads)
    import inspect_ai
    import transformers

    from alignlab.evals.score import assign_orders
    from alignlab.models import embedded
    from alignlab.models.hf import HFModel

    path = str(embedded.resolve("smollm2-135m-instruct"))
    items = select_items(args.limit, args.seed)
    orders = assign_orders(items, args.seed)
    n = len(items)
    by_suite: dict[str, int] = {}
    for it in items:
        by_suite[it.suite] = by_suite.get(it.suite, 0) + 1
    load_before = os.getloadavg()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads, transformers {transformers.__version__}, inspect-ai "
          f"{inspect_ai.__version__}; load average before {load_before[0]:.2f}")
    print(f"items: {n} ({', '.join(f'{s} {k}' for s, k in by_suite.items())}), batch {args.batch_size}")

    t = time.perf_counter()
    model = HFModel(path, batch_size=args.batch_size, device="cpu", name="embedded:smollm2-135m-instruct")
    load_a = time.perf_counter() - t
    recs_a, warm_a, t_a, cpu_a = run_alignlab(model, items, orders, "logprob", args.seed)
    print(f"(a) alignlab logprob : {t_a:7.1f}s")
    recs_b, warm_b, t_b, cpu_b = run_alignlab(model, items, orders, "generate", args.seed)
    print(f"(b) alignlab generate: {t_b:7.1f}s")
    del model
    with tempfile.TemporaryDirectory(prefix="alignlab-bench-inspect-") as log_dir:
        ins, load_c, warm_c, t_c, cpu_c = run_inspect(path, items, orders, args.batch_size, log_dir)
    print(f"(c) inspect_ai       : {t_c:7.1f}s")
    load_after = os.getloadavg()
    print_and_save(args, items, orders, recs_a, recs_b, ins,
                   secs={"a": t_a, "b": t_b, "c": t_c}, cpu={"a": cpu_a, "b": cpu_b, "c": cpu_c},
                   extra={"load_average_before": load_before, "load_average_after": load_after,
                          "model_load_s": {"alignlab": load_a, "inspect": load_c},
                          "warmup_s": {"a": warm_a, "b": warm_b, "c": warm_c},
                          "by_suite": by_suite, "threads": torch.get_num_threads()})


def print_and_save(args: argparse.Namespace, items: Sequence, orders: dict, recs_a: list[dict],
                   recs_b: list[dict], ins: dict[str, tuple[int | None, str]], secs: dict[str, float],
                   cpu: dict[str, float], extra: dict[str, Any]) -> None:
    """Figures of the three methods (and inspect's replies read by alignlab's parser) as tables."""
    from alignlab.evals.score import parse_letter
    from alignlab.stats import rate_of

    n = len(items)
    ch = {"a": [r["choice"] for r in recs_a], "b": [r["choice"] for r in recs_b],
          "c": [ins[it.key][0] for it in items],
          "c'": [parse_letter(ins[it.key][1], len(it.choices)) for it in items]}
    matching = [sorted(orders[it.key].index(i) for i in it.matching) for it in items]
    names = {"a": "(a) alignlab logprob", "b": "(b) alignlab generate",
             "c": "(c) inspect_ai multiple_choice (hf)",
             "c'": "(c') replies of (c) read by alignlab's parse_letter"}
    res: dict[str, Any] = {"items": n, "batch_size": args.batch_size, "seed": args.seed, **extra,
                           "methods": {}}
    for k in ("a", "b", "c", "c'"):
        c = ch[k]
        t = secs.get(k[0])
        res["methods"][k] = {
            "name": names[k], "seconds": t, "cpu_seconds": cpu.get(k[0]), "items_per_s": n / t,
            "unscorable": rate_of([x is None for x in c]).to_dict(),
            "behaviour": rate_of([None if x is None else x in m for x, m in zip(c, matching)]).to_dict(),
            "position_A": rate_of([None if x is None else x == 0 for x in c]).to_dict()}
    pairs = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "c'"), ("b", "c'")]
    res["agreement"] = {f"{x} vs {y}": agreement(ch[x], ch[y]) for x, y in pairs}
    ips = {k: m["items_per_s"] for k, m in res["methods"].items()}
    res["ratio_a_over_c"] = ips["a"] / ips["c"]
    res["ratio_b_over_c"] = ips["b"] / ips["c"]
    res["examples_unscorable_c"] = [ins[it.key][1] for it in items if ins[it.key][0] is None][:3]
    res["examples_unscorable_b"] = [r["transcript"][-1]["content"] for r in recs_b if r["choice"] is None][:3]

    print()
    print("| method | wall s | CPU s | items/s | vs (c) | unscorable (no letter) | behaviour rate [95% CI] "
          "| picks (A) |")
    print("|---|---|---|---|---|---|---|---|")
    for k in ("a", "b", "c", "c'"):
        m = res["methods"][k]
        ratio = f"**{ips[k] / ips['c']:.2f}x**" if k in ("a", "b") else ""
        timing = (f"{m['seconds']:.1f} | {m['cpu_seconds']:.1f} | {m['items_per_s']:.2f}" if k != "c'"
                  else "same run as (c) | | ")
        print(f"| {m['name']} | {timing} | {ratio} | {m['unscorable']['k']}/{n} = "
              f"{100 * m['unscorable']['k'] / n:.0f}% | {fmt_rate(m['behaviour'])} | "
              f"{fmt_rate(m['position_A'])} |")
    print()
    print("| agreement (same option, on items both scored) | rate [95% CI] |")
    print("|---|---|")
    for name, d in res["agreement"].items():
        print(f"| ({name.replace(' vs ', ') vs (')}) | {fmt_rate(d)} |")
    print()
    ml, w = extra["model_load_s"], extra["warmup_s"]
    print(f"model load (excluded): alignlab HFModel {ml['alignlab']:.1f}s, inspect hf provider "
          f"{ml['inspect']:.1f}s; warm-up on {WARMUP_ITEMS} items (excluded): (a) {w['a']:.1f}s, "
          f"(b) {w['b']:.1f}s, (c) {w['c']:.1f}s")
    print(f"load average (1 min) before {extra['load_average_before'][0]:.2f}, after "
          f"{extra['load_average_after'][0]:.2f} on {os.cpu_count()} cores")
    for k, ex in (("b", res["examples_unscorable_b"]), ("c", res["examples_unscorable_c"])):
        for e in ex:
            print(f"unscorable ({k}) reply: {e!r}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
