"""Auto-interp on a planted toy: latents that fire on one word, random latents, a dead latent.

The explainer labels a latent "the word X #k" (X: its most often marked word, k: a call counter so
every label is unique); the scorer says Yes iff X occurs in the text (detection) or every marked word
is X (fuzzing). So a planted latent must score 1.0, a random one about 0.5, and labels moved to
another latent (shuffled) less.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter

import pytest

torch = pytest.importorskip("torch")

from alignlab.interp.autointerp import AutoInterpConfig, run_autointerp  # noqa: E402
from alignlab.interp.autointerp_examples import build_examples, make_windows, sparsify_dense  # noqa: E402
from alignlab.interp.autointerp_score import (  # noqa: E402
    explain,
    parse_label,
    parse_yes_no,
    render,
    score_detection,
    score_fuzzing,
)
from alignlab.interp.autointerp_types import TokenTable  # noqa: E402
from alignlab.models.scripted import ScriptedModel  # noqa: E402

VOCAB = ("the cat dog sat on mat a big red ran fast and in house tree blue sun moon fish bird").split()
CAT, DOG = VOCAB.index("cat"), VOCAB.index("dog")
CFG = dict(ctx_len=16, n_top=4, n_quantile=4, n_bins=3, n_detection=8, n_negative=8, n_fuzzing=8,
           batch_size=64, explain_batch=4)


def decode(ids):
    return [" " + VOCAB[i] for i in ids]


def make_table(n_docs=40, doc_len=96, seed=0) -> TokenTable:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, len(VOCAB), (n_docs * doc_len,), generator=g)
    return TokenTable(ids, torch.arange(n_docs).repeat_interleave(doc_len), decode)


def random_latents(n_tokens, m, seed, density=0.05):
    g = torch.Generator().manual_seed(seed)
    fire = torch.rand(n_tokens, m, generator=g) < density
    return torch.rand(n_tokens, m, generator=g) * fire


def make_sources(table):
    n = table.token_ids.numel()
    g = torch.Generator().manual_seed(0)
    cat = (table.token_ids == CAT).float() * (2 + torch.rand(n, generator=g))
    dog = (table.token_ids == DOG).float() * 3
    sae = torch.cat([cat[:, None], dog[:, None], random_latents(n, 4, 1)], dim=1)
    rnd = torch.cat([random_latents(n, 3, 2), torch.zeros(n, 1)], dim=1)  # last one is dead
    return {"sae": (sae, [11, 22, 30, 31, 32, 33]), "random_sae": (rnd, [0, 1, 2, 3]),
            "neurons": (random_latents(n, 2, 3, 0.1), [5, 6])}


def user_text(conv):
    return conv[-1]["content"]


class Explainer(ScriptedModel):
    """Labels with the most often marked word; remembers each label's shown texts."""

    def __init__(self, fail_word=None):
        super().__init__(reply=self._label, name="explainer")
        self.shown: dict[str, set[str]] = {}
        self.fail_word = fail_word

    def _label(self, conv):
        text = user_text(conv)
        lines = [ln.split(". ", 1)[1] for ln in text.splitlines() if re.match(r"^\d+\. ", ln)]
        words = Counter(w.strip().lower() for ln in lines for span in re.findall(r"<<(.+?)>>", ln)
                        for w in span.split())
        word = words.most_common(1)[0][0]
        if word == self.fail_word:
            return ""
        label = f"the word {word} #{len(self.calls)}"
        self.shown[label] = {ln.replace("<<", "").replace(">>", "") for ln in lines}
        return label


def rule(conv) -> bool | None:
    """The scorer's answer from the label and the text only."""
    text = user_text(conv)
    label = re.search(r"^Pattern: (.*)$", text, re.M)
    body = re.search(r"^Text: (.*)$", text, re.M)
    if not label or not body:
        return None
    word = re.search(r"the word (\S+)", label.group(1)).group(1)
    if "marked like" in text:
        marked = [w for span in re.findall(r"<<(.+?)>>", body.group(1)) for w in span.split()]
        return bool(marked) and all(w.lower() == word for w in marked)
    return word in body.group(1).split()


class Scorer(ScriptedModel):
    """Log-likelihood scorer: the rule's answer gets the higher score; counts scored conversations."""

    def __init__(self):
        super().__init__(name="scorer", score_fn=self._score)
        self.scored: list = []

    def _score(self, conv, cont):
        yes = rule(conv)
        return 0.0 if yes is None or yes == (cont == "Yes") else -5.0

    def score(self, conversations, continuations):
        self.scored.extend(conversations)
        return super().score(conversations, continuations)


class GenScorer(ScriptedModel):
    """A black-box scorer: cannot score, replies in words; texts with 'bird' get an unparseable reply."""

    def __init__(self):
        super().__init__(reply=self._reply, name="gen-scorer")

    def _reply(self, conv):
        if "bird" in user_text(conv):
            return "Maybe, hard to say."
        return "Yes." if rule(conv) else "No, it does not."

    def score(self, conversations, continuations):
        raise NotImplementedError("black box")


@pytest.fixture(scope="module")
def table():
    return make_table()


@pytest.fixture(scope="module")
def run(table, tmp_path_factory):
    out = tmp_path_factory.mktemp("autointerp")
    explainer, scorer, ticks = Explainer(), Scorer(), []
    res = run_autointerp(table, make_sources(table), explainer, scorer, AutoInterpConfig(**CFG), out,
                         progress=lambda d, t: ticks.append((d, t)))
    records = [json.loads(x) for x in (out / "latents.jsonl").read_text().splitlines()]
    return {"res": res, "out": out, "explainer": explainer, "scorer": scorer, "ticks": ticks,
            "records": {(r["source"], r["latent"]): r for r in records}}


def test_windows_stay_inside_documents_and_skip_bos():
    table = make_table(n_docs=3, doc_len=20)
    w = make_windows(table, 8)
    assert w.lengths == [8, 8, 4] * 3  # 20 = 8 + 8 + 4 in each document
    for r, n, d in zip(w.rows, w.lengths, w.docs):
        assert set(table.doc_ids[r:r + n].tolist()) == {d}
    # Two segments per document, each opening with a BOS row: BOS rows are in no window.
    positions = torch.cat([torch.arange(10), torch.arange(10)]).repeat(3)
    w = make_windows(TokenTable(table.token_ids, table.doc_ids, decode, positions), 8)
    assert all(positions[r] != 0 for r in w.rows)
    assert w.lengths == [8, 1] * 6 and (w.row_window[positions == 0] == -1).all()
    assert w.offsets[:4] == [1, 9, 11, 19]  # offsets within the document


def test_explainer_windows_and_scored_windows_are_disjoint(table):
    cfg = AutoInterpConfig(**CFG)
    n = table.token_ids.numel()
    rare = torch.zeros(n, 1)
    rare[torch.arange(5) * 200 + 3, 0] = 1.0  # fires in only 5 windows
    acts = torch.cat([make_sources(table)["sae"][0], rare], dim=1)
    exs = build_examples(table, acts, list(range(7)), cfg)
    for ex in exs:
        assert not ex.explainer_windows() & ex.scored_windows()
        assert all(max(c.acts) > 0 for c in ex.shown + ex.positives)
        assert all(max(c.acts) <= 0 for c in ex.negatives)
    top = [max(c.acts) for c in exs[0].top]
    assert top == sorted(top, reverse=True) and len(exs[0].top) == cfg.n_top
    assert len(exs[0].positives) == cfg.n_detection and len(exs[0].negatives) == cfg.n_negative
    assert not {c.window for c in exs[0].positives} & {c.window for c, _, _ in exs[0].fuzz}
    assert len(exs[6].shown) == 3 and len(exs[6].positives) == 2  # few windows: about half held out


def test_fuzzing_marks_true_tokens_or_as_many_silent_ones(table):
    exs = build_examples(table, make_sources(table)["sae"][0], list(range(6)), AutoInterpConfig(**CFG))
    for ex in exs:
        truths = [t for _, _, t in ex.fuzz]
        assert truths.count(True) == 4 and truths.count(False) == 4
        for ctx, marks, right in ex.fuzz:
            firing = [i for i, a in enumerate(ctx.acts) if a > 0]
            if right:
                assert marks == firing
            else:
                assert len(marks) == len(firing) and not set(marks) & set(firing)


def test_planted_latents_score_perfectly_and_random_ones_near_chance(run):
    recs = run["records"]
    for latent, word in ((11, "cat"), (22, "dog")):
        r = recs[("sae", latent)]
        assert r["label"].startswith(f"the word {word} ")
        assert r["detection"]["bal_acc"] == 1.0 and r["detection"]["n"] == 16
        assert r["fuzzing"]["bal_acc"] == 1.0 and r["fuzzing"]["n"] == 8
        assert r["detection"]["auc"] == 1.0
    rand = [recs[("sae", k)]["detection"]["bal_acc"] for k in (30, 31, 32, 33)]
    assert 0.3 <= sum(rand) / 4 <= 0.7
    assert all(recs[("sae", k)]["fuzzing"]["bal_acc"] <= 0.75 for k in (30, 31, 32, 33))


def test_shuffled_labels_score_lower(run):
    res, recs = run["res"], run["records"]
    sh = res["baselines"]["shuffled"]
    assert sh["detection_bal_acc"]["mean"] < res["detection_bal_acc"]["mean"] - 0.1
    assert sh["main_minus_shuffled"]["detection"]["diff"] > 0.1
    donors = {k[1]: r["shuffled"]["label_from"] for k, r in recs.items() if k[0] == "sae"}
    assert all(d != k for k, d in donors.items()) and sorted(donors.values()) == sorted(donors)
    for latent in (11, 22):
        r = recs[("sae", latent)]
        donor_label = recs[("sae", r["shuffled"]["label_from"])]["label"]
        if donor_label.split()[2] != r["label"].split()[2]:
            assert r["shuffled"]["detection"]["bal_acc"] < 1.0
    assert all(r["shuffled"] is None for k, r in recs.items() if k[0] != "sae")


def test_scorer_never_sees_a_window_the_label_was_written_from(run):
    shown, checked = run["explainer"].shown, 0
    for conv in run["scorer"].scored:
        text = user_text(conv)
        label = re.search(r"^Pattern: (.*)$", text, re.M)
        if not label:
            continue
        body = re.search(r"^Text: (.*)$", text, re.M).group(1).replace("<<", "").replace(">>", "")
        assert body not in shown[label.group(1)]
        assert not re.search(r"\d\.\d", text) and "Yes" not in body  # no activation values, no answer
        checked += 1
    assert checked == len(run["scorer"].scored) - 1  # all but the one scoring-mode probe


def test_results_have_spec_keys_and_cis_contain_the_mean(run):
    res = run["res"]
    for key in ("detection_bal_acc", "fuzzing_bal_acc", "interpretable_frac", "baselines", "counts",
                "config", "explainer", "scorer", "rule"):
        assert key in res
    assert set(res["baselines"]) == {"shuffled", "neurons", "random_sae"}
    for block in [res] + list(res["baselines"].values()):
        for key in ("detection_bal_acc", "fuzzing_bal_acc"):
            m = block[key]
            assert m["ci"][0] <= m["mean"] <= m["ci"][1]
        f = block["interpretable_frac"]
        assert f["ci"][0] <= f["rate"] <= f["ci"][1] and f["rate"] == f["k"] / f["n"]
    assert res["interpretable_frac"]["k"] == 2 and res["interpretable_frac"]["n"] == 6  # the planted two
    assert res["counts"] == {"latents": 6, "labelled": 6, "explainer_failures": 0, "no_activations": 0,
                             "unscorable_items": 0}
    assert res["baselines"]["random_sae"]["counts"]["no_activations"] == 1
    assert res["scoring"] == "logprob" and res["explainer"] == "scripted:explainer"
    on_disk = json.loads((run["out"] / "results.json").read_text())
    assert on_disk["detection_bal_acc"] == res["detection_bal_acc"]


def test_records_follow_the_spec(run, table):
    recs = run["records"]
    assert len(recs) == 12
    r = recs[("sae", 11)]
    cat_acts = make_sources(table)["sae"][0][:, 0]
    assert r["density"] == pytest.approx(float((cat_acts > 0).float().mean()))
    assert r["max_act"] == pytest.approx(float(cat_acts.max()))
    assert sum(r["hist"]["counts"]) == int((cat_acts > 0).sum())
    assert len(r["hist"]["edges"]) == len(r["hist"]["counts"]) + 1
    ctx = r["examples"]["top"][0]
    assert set(ctx) >= {"tokens", "acts", "doc", "start"} and len(ctx["tokens"]) == len(ctx["acts"])
    dead = recs[("random_sae", 3)]
    assert dead["label"] is None and dead["hist"] == {"edges": [], "counts": []}
    assert dead["detection"]["bal_acc"] is None and dead["detection"]["n"] == 0
    assert run["ticks"][-1] == (24, 24) and [d for d, _ in run["ticks"]] == sorted(d for d, _ in run["ticks"])


def test_resume_skips_done_latents_and_gives_the_same_results(run, tmp_path, table):
    out = tmp_path / "resume"
    shutil.copytree(run["out"], out)
    explainer, scorer = Explainer(), Scorer()
    res = run_autointerp(table, make_sources(table), explainer, scorer, AutoInterpConfig(**CFG), out)
    assert explainer.calls == [] and scorer.scored == []
    assert res["detection_bal_acc"] == run["res"]["detection_bal_acc"]
    # Killed mid-run: 2 whole records and a torn line survive; only the other 10 are scored again.
    lines = (out / "latents.jsonl").read_text().splitlines()
    kept = [json.loads(x) for x in lines[:2]]
    (out / "latents.jsonl").write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:50])
    done_items = sum(len(r[k]["items"]) for r in kept for k in ("detection", "fuzzing"))
    done_items += sum(len(r["shuffled"][k]["items"]) for r in kept if r["shuffled"]
                      for k in ("detection", "fuzzing"))
    scorer = Scorer()
    res = run_autointerp(table, make_sources(table), Explainer(), scorer, AutoInterpConfig(**CFG), out)
    assert len(scorer.scored) == len(run["scorer"].scored) - done_items
    assert len((out / "latents.jsonl").read_text().splitlines()) == 12
    for key in ("detection_bal_acc", "fuzzing_bal_acc", "interpretable_frac", "baselines"):
        assert res[key] == run["res"][key]
    with pytest.raises(ValueError, match="n_top differs"):
        run_autointerp(table, make_sources(table), Explainer(), Scorer(),
                       AutoInterpConfig(**{**CFG, "n_top": 5}), out)


def test_black_box_scorer_counts_unparseable_replies_apart(table, tmp_path):
    src = make_sources(table)
    res = run_autointerp(table, {"sae": src["sae"]}, Explainer(fail_word="dog"), GenScorer(),
                         AutoInterpConfig(**CFG), tmp_path)
    recs = {r["latent"]: r for r in map(json.loads, (tmp_path / "latents.jsonl").read_text().splitlines())}
    cat = recs[11]
    assert cat["detection"]["unscorable"] > 0 and cat["detection"]["bal_acc"] == 1.0
    assert cat["detection"]["n"] + cat["detection"]["unscorable"] == 16
    assert all(item[1] is None for item in cat["detection"]["items"] if item[1] is None)
    assert res["scoring"] == "generate" and res["counts"]["unscorable_items"] == sum(
        r[k]["unscorable"] for r in recs.values() for k in ("detection", "fuzzing"))
    dog = recs[22]  # the explainer returned nothing: a failure, not scored, excluded
    assert dog["label"] is None and "no label" in dog["explainer_error"]
    assert dog["detection"]["n"] == 0 and dog["detection"]["bal_acc"] is None
    assert res["counts"]["explainer_failures"] == 1 and res["interpretable_frac"]["excluded"] == 1


def test_public_scoring_functions_match_the_run(table):
    cfg = AutoInterpConfig(**CFG)
    exs = build_examples(table, make_sources(table)["sae"][0][:, :2], [11, 22], cfg)
    labels = [lab for lab, _ in explain(exs, Explainer(), cfg)]
    assert [lab.split()[2] for lab in labels] == ["cat", "dog"]
    assert [d["bal_acc"] for d in score_detection(exs, labels, Scorer(), cfg)] == [1.0, 1.0]
    assert [d["bal_acc"] for d in score_fuzzing(exs, labels, Scorer(), cfg)] == [1.0, 1.0]
    swapped = score_detection(exs, labels[::-1], Scorer(), cfg)
    assert all(d["bal_acc"] <= 0.75 for d in swapped)


def test_parsers_and_rendering():
    assert parse_yes_no("Yes.") is True and parse_yes_no(" no, never") is False
    assert parse_yes_no("I think yes") is True
    assert parse_yes_no("Maybe") is None and parse_yes_no("yes or no?") is None
    assert parse_yes_no("Yes or No: no") is False
    assert parse_label("\n[EXPLANATION]: The word <<cat>>.\nmore") == "The word cat"
    assert parse_label("Label: \"animals\"") == "animals" and parse_label("  \n ") is None
    assert render([" the", " cat", " cat", " sat"], [1, 2]) == "the <<cat cat>> sat"
    assert render([" a<<b", "\n", "c"], []) == "a< <b c"


def test_bad_inputs_get_one_clear_error(table):
    n = table.token_ids.numel()
    with pytest.raises(ValueError, match=r"sources\['sae'\]: acts must be \[n_tokens="):
        build_examples(table, torch.zeros(n - 1, 2), [0, 1], AutoInterpConfig())
    with pytest.raises(ValueError, match=r"sources\['sae'\]: acts has 2 columns but 3 latent ids"):
        build_examples(table, torch.zeros(n, 2), [0, 1, 2], AutoInterpConfig())
    with pytest.raises(ValueError, match="no 'sae' entry"):
        run_autointerp(table, {"neurons": (torch.zeros(n, 1), [0])}, Explainer(), Scorer(),
                       AutoInterpConfig(), "/nonexistent")
    with pytest.raises(ValueError, match="AutoInterpConfig.scoring"):
        AutoInterpConfig(scoring="vibes")


def test_sparsify_dense_keeps_the_top_fraction():
    x = torch.arange(100, dtype=torch.float32)[:, None].repeat(1, 2) - 10
    y = sparsify_dense(x, 0.1)
    assert (y > 0).sum(0).tolist() == [10, 10] and y[-1, 0] == 89
