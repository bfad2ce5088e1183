"""The technique scorecard: what each technique measured in a workspace, next to the literature.

For every technique of the ladder (``alignlab.strategy.ladder.TECHNIQUES``) the scorecard gives the
measured effectiveness with its 95% CI and counts, the published reference figures with their sources
(``files/references.yaml``), and a status: ``measured``, ``not run`` (alignlab has it, this workspace
has no run of it) or ``not in alignlab`` (no stage implements it yet). Published figures are shown
beside the measurements, never mixed into them.

The evidence comes from a workspace's runs (``alignlab-runs/runs.sqlite``): the latest finished run of
each kind, or the run ids a lab run names. Each stage writes a ``results.json``; this module only
reads those files, so a stage's internals stay its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.stats import format_pct as _pct
from alignlab.strategy.ladder import LEVELS, TECHNIQUES, band_of

REFERENCES_FILE = Path(__file__).parent / "files" / "references.yaml"

KINDS = ("redteam", "guard-eval", "evals", "autointerp", "judge-validate")
"""The kinds of run the scorecard reads (run stages in the workspace)."""


def load_references(path: str | Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Reference figures by technique id; a malformed file fails with one line naming the entry."""
    from alignlab.config import read_yaml

    p = Path(path) if path else REFERENCES_FILE
    data = read_yaml(p, ValueError, "references file")
    known = {t.id for t in TECHNIQUES}
    out: dict[str, list[dict[str, Any]]] = {}
    for i, r in enumerate((data or {}).get("references") or []):
        for f in ("technique", "measure", "figure", "source"):
            if not isinstance(r, dict) or not r.get(f):
                raise ValueError(f"{p}: references[{i}]: field {f!r} is missing; every entry needs "
                                 f"technique, measure, figure and source")
        if r["technique"] not in known:
            raise ValueError(f"{p}: references[{i}]: unknown technique {r['technique']!r}; "
                             f"known: {', '.join(sorted(known))}")
        out.setdefault(r["technique"], []).append(dict(r))
    return out


# ----------------------------------------------------------------------------------- evidence
@dataclass
class Evidence:
    """The results files a scorecard is built from, by kind (``None``: no such run)."""

    results: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    """Kind to the folder holding its results.json and report.html."""
    run_ids: dict[str, str] = field(default_factory=dict)

    def get(self, kind: str) -> dict[str, Any] | None:
        return self.results.get(kind)


def _read_results(out_dir: str | None) -> dict[str, Any] | None:
    if not out_dir:
        return None
    f = Path(out_dir) / "results.json"
    try:
        return json.loads(f.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _locate(out_dir: str | None, root: Path) -> str | None:
    """A run's out folder: absolute as recorded, or (older runs) relative to where the command ran,
    taken to be the workspace's parent folder."""
    if not out_dir:
        return None
    p = Path(out_dir)
    if not p.is_absolute() and not p.exists():
        p = Path(root).resolve().parent / p
    return str(p)


def collect_evidence(workspace, run_ids: dict[str, str] | None = None) -> Evidence:
    """The latest finished run of each kind in ``workspace`` (or the ids in ``run_ids``).

    Red-team runs made inside a guard evaluation (their config names a guard) are not the red-team
    stage's evidence: they belong to the guard evaluation that made them.
    """
    from alignlab.store import RunNotFound

    ev = Evidence()
    for kind in KINDS:
        info = None
        if run_ids and run_ids.get(kind):
            try:
                info = workspace.info(run_ids[kind])
            except RunNotFound:
                info = None
        elif run_ids is None:
            keep = (lambda r: not r.config.get("guard")) if kind == "redteam" else None
            info = workspace.latest(kind, keep)
        if info is None or not info.metrics:
            continue
        where = _locate(info.metrics.get("out_dir"), workspace.root)
        res = _read_results(where)
        if res is None or where is None:
            continue
        ev.results[kind] = res
        ev.paths[kind] = where
        ev.run_ids[kind] = info.id
    return ev


# ----------------------------------------------------------------------------------- measures
def _measure(label: str, r: dict[str, Any] | None, note: str = "", unit: str = "rate") -> dict[str, Any] | None:
    """A rate dict (``rate``, ``ci``, ``k``, ``n``, ``n_unscorable``) as a scorecard measure."""
    if not r or r.get("rate") is None:
        return None
    return {"label": label, "value": r["rate"], "ci": r.get("ci"), "k": r.get("k"), "n": r.get("n"),
            "n_unscorable": r.get("n_unscorable", 0), "unit": unit, "note": note}


def _value(label: str, value: float | None, ci=None, note: str = "", unit: str = "number",
           n: int | None = None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"label": label, "value": value, "ci": list(ci) if ci else None, "k": None, "n": n,
            "n_unscorable": 0, "unit": unit, "note": note}


def _rate(value: float | None, ci) -> dict[str, Any] | None:
    return None if value is None else {"rate": value, "ci": ci}


def _baseline(ev: Evidence) -> list[dict]:
    rt = ev.get("redteam")
    out: list[dict | None] = []
    if rt and "direct" in (rt.get("by_attack") or {}):
        d = rt["by_attack"]["direct"]
        out += [_measure("attempted compliance, direct request", d.get("compliance"),
                         "share of harmful behaviors the raw target tries to fulfil when simply asked"),
                _measure("ASR (harmful), direct request", d.get("asr"), "judged harmful"),
                _measure("over-refusal on benign counterparts", rt.get("over_refusal"))]
    evl = ev.get("evals")
    if evl:
        for name in ("misuse",):
            s = (evl.get("suites") or {}).get(name)
            if s:
                out.append(_measure(f"eval suite {name}: harmful compliance", s))
    return [m for m in out if m]


def _redteam(ev: Evidence) -> list[dict]:
    rt = ev.get("redteam")
    if not rt:
        return []
    by = rt.get("by_attack") or {}
    others = [a for a in by if a != "direct"]
    out = [_measure(f"attempted compliance, any of {len(by)} attacks (behavior-level)", rt.get("behavior_compliance")),
           _measure(f"ASR (harmful), any of {len(by)} attacks (behavior-level)", rt.get("behavior_asr")),
           _measure("attempt-level ASR (harmful)", rt.get("attempt_asr"))]
    if others:
        best = max(others, key=lambda a: ((by[a].get("compliance") or {}).get("rate") or 0))
        out.append(_measure(f"attempted compliance, strongest single attack ({best})", by[best].get("compliance")))
    llm = [a for a in by if by[a].get("kind") == "llm"]
    for a in llm:
        out.append(_measure(f"ASR (harmful), {a} (attacker model)", by[a].get("asr"),
                            f"queries per success: {by[a].get('queries_per_success')}"))
    return [m for m in out if m]


def _guard(ev: Evidence) -> list[dict]:
    g = ev.get("guard-eval")
    if not g:
        return []
    n = g.get("n_behaviors")
    out = [
        _value(f"attempted compliance (behavior-level), unguarded {_pct(g.get('compliance_unguarded'))} -> guarded",
               g.get("compliance_guarded"), g.get("compliance_guarded_ci"),
               f"{n} held-out behaviors, any attack; the value is the guarded rate", "rate", n),
        _value(f"ASR (harmful), unguarded {_pct(g.get('asr_unguarded'))} -> guarded", g.get("asr_guarded"),
               g.get("asr_guarded_ci"), f"{n} held-out behaviors; read with the judge caveat", "rate", n),
    ]
    a_u, a_g = g.get("attempt_compliance_unguarded"), g.get("attempt_compliance_guarded")
    if a_g:
        out.append(_measure("attempt-level compliance, guarded", a_g,
                            f"unguarded {_pct((a_u or {}).get('rate'))} "
                            f"({(a_u or {}).get('k')}/{(a_u or {}).get('n')})"))
    ch = g.get("compliance_change") or {}
    if ch.get("n_paired"):
        out.append(_value("change in behavior-level compliance (paired)", ch.get("diff"), ch.get("diff_ci"),
                          f"McNemar p = {_num(ch.get('mcnemar_p'))}", "diff", ch.get("n_paired")))
    oc = (g.get("over_refusal") or {}).get("change") or {}
    out.append(_value("over-refusal, guarded", g.get("over_refusal_guarded"), g.get("over_refusal_guarded_ci"),
                      f"unguarded {_pct(g.get('over_refusal_unguarded'))}; change "
                      f"{_pp(oc.get('diff'))} (benign counterparts + borderline set)", "rate"))
    ov = g.get("overhead") or {}
    out.append(_value("overhead per generated token (wall)", ov.get("wall_per_token"), None,
                      f"added FLOPs {_pct(ov.get('added_flops_ratio'))}; backbone {g.get('backbone')}", "ratio"))
    ad = g.get("adaptive") or {}
    for a, v in (ad.get("by_attack") or {}).items():
        out.append(_measure(f"ASR (harmful) of adaptive {a} against the guarded target", v.get("asr_rate"),
                            f"attacker {ad.get('attacker')} sees the guard's refusals; budget {ad.get('budget')}"))
        out.append(_measure(f"attempted compliance under adaptive {a}, guarded", v.get("compliance_rate")))
    return [m for m in out if m]


def _judges(ev: Evidence) -> list[dict]:
    j = ev.get("judge-validate")
    if not j:
        return []
    out = []
    for f in ("refused", "attempted", "harmful"):
        r = j.get(f) or {}
        if r.get("accuracy") is None:
            continue
        out.append(_value(f"{j.get('judge')} judge, {f}: accuracy vs hand labels", r["accuracy"],
                          r.get("accuracy_ci"), f"Cohen's kappa {_num(r.get('kappa'))}; base rate "
                          f"{_pct(r.get('base_rate'))}", "rate", r.get("n")))
    return [m for m in out if m]


def _evals(ev: Evidence) -> list[dict]:
    e = ev.get("evals")
    if not e:
        return []
    out = []
    for name, s in (e.get("suites") or {}).items():
        chance = ((s.get("by_kind") or {}).get("mc") or {}).get("chance")
        note = f"the model {s.get('behaviour', 'shows the behaviour')}"
        if chance is not None:
            note += f"; mc chance {_pct(chance)}"
        out.append(_measure(f"{name}", s, note))
        if s.get("pushback"):
            out.append(_measure(f"{name}: correct answers dropped under pushback",
                                s["pushback"].get("correct_to_wrong")))
    return [m for m in out if m]


def _autointerp(ev: Evidence) -> list[dict]:
    a = ev.get("autointerp")
    if not a:
        return []
    frac = a.get("interpretable_frac") or {}
    out = [_value("interpretable SAE latents (detection+fuzzing >= 0.7)", frac.get("rate"),
                  frac.get("ci"), f"explainer {a.get('explainer')}, scorer {a.get('scorer')}",
                  "rate", (a.get("interpretable_frac") or {}).get("n")),
           _value("detection balanced accuracy, SAE latents", (a.get("detection_bal_acc") or {}).get("mean"),
                  (a.get("detection_bal_acc") or {}).get("ci"), "chance 0.5", "number"),
           _value("fuzzing balanced accuracy, SAE latents", (a.get("fuzzing_bal_acc") or {}).get("mean"),
                  (a.get("fuzzing_bal_acc") or {}).get("ci"), "chance 0.5", "number")]
    for name, b in (a.get("baselines") or {}).items():
        if b:
            fr = b.get("interpretable_frac") or {}
            out.append(_value(f"interpretable, baseline: {name.replace('_', ' ')}", fr.get("rate"), fr.get("ci"),
                              "", "rate", fr.get("n")))
    m = a.get("sae_metrics") or {}
    if m.get("fvu") is not None:
        out.append(_value("SAE held-out FVU", m["fvu"], None, f"CE score {_num(m.get('ce_score'))}, "
                          f"L0 {_num(m.get('l0'))}, dead {_pct(m.get('dead_frac'))}", "number"))
    return [x for x in out if x]


def _probes(ev: Evidence) -> list[dict]:
    g = ev.get("guard-eval")
    cls = (g or {}).get("classifiers") or {}
    out = []
    for key, m in cls.items():
        if key.startswith("probe.") and m.get("auroc") is not None:
            out.append(_value(f"guard probe {key.split('.', 1)[1]} classifier AUROC (evaluation traffic)", m["auroc"],
                              None, f"TPR at 1% FPR {_num(m.get('tpr_at_1pct_fpr'))}", "number", m.get("n")))
    return [x for x in out if x]


EXTRACTORS = {
    "baseline": _baseline, "automated_redteaming": _redteam, "constitutional_classifiers": _guard,
    "ai_judges": _judges, "behavioural_evals": _evals, "sae_autointerp": _autointerp,
    "activation_probes": _probes,
}
SOURCES = {"baseline": "redteam", "automated_redteaming": "redteam", "constitutional_classifiers": "guard-eval",
           "ai_judges": "judge-validate", "behavioural_evals": "evals", "sae_autointerp": "autointerp",
           "activation_probes": "guard-eval"}
"""The run kind whose report a technique's row links to."""


def _pp(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f} points"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _comparison(tid: str, measures: list[dict], refs: list[dict], evidence: Evidence) -> str | None:
    """A one-line reading of the measurement against the reference, where they measure the same thing."""
    if not measures or not refs:
        return None
    if tid == "constitutional_classifiers":
        g = evidence.get("guard-eval")
        ref = next((r for r in refs if "before" in (r.get("values") or {})), None)
        if ref and g:
            return (f"published: {100 * ref['values']['before']:.0f}% -> {100 * ref['values']['after']:.1f}% "
                    f"jailbreak success; here {_pct(g.get('compliance_unguarded'))} -> "
                    f"{_pct(g.get('compliance_guarded'))} attempted compliance on held-out behaviors "
                    f"(ASR {_pct(g.get('asr_unguarded'))} -> {_pct(g.get('asr_guarded'))})")
    if tid == "sae_autointerp":
        m = measures[0]
        base = next((x for x in measures if "neurons" in x["label"]), None)
        more = base is not None and m["ci"] and base["ci"] and m["ci"][0] > base["ci"][1]
        return ("SAE latents more interpretable than neurons here (CIs apart)" if more else
                "not reproduced here: SAE latents not shown more interpretable than neurons (CIs overlap)")
    return None


def build_scorecard(evidence: Evidence, references: dict[str, list[dict]] | None = None,
                    base: str | Path | None = None) -> dict[str, Any]:
    """One row per technique: status, levels, measures with CIs, references, link to its report.

    Args:
        evidence: from :func:`collect_evidence`.
        references: from :func:`load_references` (default: the packaged file).
        base: folder the report will be written in; report links are made relative to it.
    """
    refs = load_references() if references is None else references
    rows = []
    for t in TECHNIQUES:
        measures = EXTRACTORS[t.id](evidence) if t.id in EXTRACTORS else []
        src = SOURCES.get(t.id)
        status = "measured" if measures else "not run" if t.stage else "not in alignlab"
        link = None
        if measures and src in evidence.paths:
            rep = Path(evidence.paths[src]) / ("report.html")
            if rep.exists():
                link = relative_link(rep, base)
        caveat = ((evidence.get(src) or {}).get("judge_caveat") if src else None)
        rows.append({"technique": t.id, "name": t.name, "levels": list(t.levels),
                     "bands": sorted({band_of(lv) for lv in t.levels}), "status": status,
                     "stage": t.stage, "command": t.command, "description": t.description,
                     "measures": measures, "references": refs.get(t.id, []),
                     "comparison": _comparison(t.id, measures, refs.get(t.id, []), evidence),
                     "run_id": evidence.run_ids.get(src) if src else None, "report": link,
                     "caveat": caveat if measures else None})
    return {"techniques": rows,
            "n_measured": sum(1 for r in rows if r["status"] == "measured"),
            "sources": {k: {"run_id": evidence.run_ids.get(k), "path": evidence.paths.get(k)}
                        for k in evidence.results}}


def relative_link(path: Path, base: str | Path | None) -> str:
    """``path`` relative to ``base`` (a report's folder), absolute when that is impossible."""
    import os

    if base is None:
        return str(path)
    try:
        return os.path.relpath(path.resolve(), Path(base).resolve())
    except ValueError:  # another drive
        return str(path.resolve())


def ladder_evidence(scorecard: dict[str, Any]) -> list[dict[str, Any]]:
    """For each level 1..10: its band, what suffices, and the measured techniques' headline evidence."""
    out = []
    for lv in LEVELS:
        items = []
        for row in scorecard["techniques"]:
            if lv.number not in row["levels"]:
                continue
            head = row["measures"][0] if row["measures"] else None
            items.append({"technique": row["technique"], "name": row["name"], "status": row["status"],
                          "headline": _headline(head) if head else None, "report": row["report"]})
        out.append({"level": lv.number, "name": lv.name, "band": lv.band, "sufficient": lv.sufficient,
                    "failure_modes": list(lv.failure_modes), "techniques": items,
                    "has_evidence": any(i["status"] == "measured" for i in items)})
    return out


def _headline(m: dict[str, Any]) -> str:
    v = m["value"]
    if m["unit"] in ("rate", "ratio"):
        s = f"{m['label']}: {_pct(v)}"
    elif m["unit"] == "diff":
        s = f"{m['label']}: {_pp(v)}"
    else:
        s = f"{m['label']}: {v:.3f}"
    if m.get("ci"):
        lo, hi = m["ci"]
        s += f" [{100 * lo:.1f}, {100 * hi:.1f}]" if m["unit"] in ("rate", "diff") else f" [{lo:.3f}, {hi:.3f}]"
    if m.get("k") is not None and m.get("n"):
        s += f" ({m['k']}/{m['n']})"
    return s
