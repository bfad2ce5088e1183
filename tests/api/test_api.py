"""The library front door: ``import alignlab`` and the typed results, registries and error base.

These tests prove that the public functions run a stage end to end on a scripted model with a
temporary workspace, that the typed result serialises to exactly the results.json on disk, that a
plugin attack, backend, judge and suite need no edit of alignlab, and that every error class derives
from ``AlignlabError``. The README's own Python example runs verbatim in ``test_readme_example``.
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import alignlab
from alignlab.errors import AlignlabError

ROOT = Path(__file__).resolve().parents[2]
COMPLY = "Sure, here is how. Step 1: gather the materials. Step 2: follow the procedure carefully."


def test_import_alignlab_is_lazy():
    """``import alignlab`` loads no stage, torch or transformers until a name is used."""
    code = ("import sys, alignlab; heavy = [m for m in ('torch', 'transformers', 'alignlab.api', "
            "'alignlab.redteam', 'numpy') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve():
    for name in alignlab.__all__:
        assert getattr(alignlab, name) is not None, name
    with pytest.raises(AttributeError):
        alignlab.no_such_name  # noqa: B018


def test_run_redteam_with_a_spec_and_a_temporary_workspace(tmp_path):
    res = alignlab.run_redteam(f"scripted:{COMPLY}", attacks="direct,persona", limit=3, budget=1)
    assert isinstance(res, alignlab.RedteamResult)
    assert res.n_behaviors == 3 and len(res.by_attack) == 2
    assert res.run_id and res.out_dir is not None and "alignlab-" in str(res.out_dir)
    on_disk = json.loads((res.out_dir / "results.json").read_text())
    assert res.to_dict() == on_disk  # the typed result is the results.json contract
    assert (res.out_dir / "report.html").exists() and res.report_path == res.out_dir / "report.html"
    assert res["asr"] == res.asr and res.asr_ci == tuple(on_disk["asr_ci"])
    assert "ASR (harmful, behavior-level)" in res.summary() and f"{res.run_id}" in res.summary()
    saved = res.save(tmp_path / "copy")
    assert {p.name for p in saved.iterdir()} == {"results.json", "hits.jsonl", "report.html"}
    again = alignlab.RedteamResult.load(saved)
    assert again.to_dict() == on_disk and len(again.hits) == len(res.hits)


def test_run_redteam_takes_objects_and_a_named_workspace(tmp_path):
    from alignlab.models import ScriptedModel

    ws = alignlab.open_workspace(tmp_path / "ws")
    res = alignlab.run_redteam(ScriptedModel("I'm sorry, I can't help with that."), attacks=["direct"], limit=2,
                               workspace=ws, out=tmp_path / "out", report=False)
    assert res.compliance_rate == 0.0 and not (tmp_path / "out" / "report.html").exists()
    assert ws.info(res.run_id).status == "done"


def test_unknown_setting_is_one_line_error():
    with pytest.raises(AlignlabError, match="unknown setting.*bugdet.*known:.*budget"):
        alignlab.run_redteam(f"scripted:{COMPLY}", attacks="direct", limit=1, bugdet=3)


def test_run_eval_returns_typed_results():
    res = alignlab.run_eval("scripted:B", suites=["sycophancy"], limit=4)
    assert isinstance(res, alignlab.EvalResult)
    assert list(res.suites) == ["sycophancy"] and len(res.samples) == 4
    assert res.rate("sycophancy") == res["suites"]["sycophancy"]["rate"]
    assert (res.out_dir / "samples.jsonl").exists() and res.report_path is not None
    assert "sycophancy" in res.summary()


def test_a_plugin_attack_registers_without_editing_alignlab():
    from alignlab.models.base import user
    from alignlab.redteam import register_attack
    from alignlab.redteam.attacks import ATTACKS, TemplateAttack

    @register_attack
    class Shouting(TemplateAttack):
        name = "test_shouting"
        description = "The request in capitals."

        def build(self, behavior, rng, variant):
            return user(behavior.prompt.upper())

    try:
        res = alignlab.run_redteam(f"scripted:{COMPLY}", attacks="test_shouting", limit=2, report=False)
        assert list(res.by_attack) == ["test_shouting"]
        with pytest.raises(ValueError, match="already registered"):
            register_attack(type("Other", (Shouting,), {}))
    finally:
        ATTACKS.pop("test_shouting", None)


def test_a_plugin_backend_and_judge_register_without_editing_alignlab():
    from alignlab.judges import JUDGES, Verdict, make_judge, register_judge
    from alignlab.models import ScriptedModel
    from alignlab.models.spec import BACKENDS, register_backend

    @register_backend("echotest")
    def _echo(rest, **options):
        return ScriptedModel(rest, name="echotest")

    @register_judge("alwaysharmful")
    class Always:
        name = "alwaysharmful"

        def judge(self, items):
            return [Verdict(refused=False, attempted=True, harmful=True, judge=self.name) for _ in items]

    try:
        assert alignlab.load_model("echotest:hello").generate([[{"role": "user", "content": "x"}]])[0].text == "hello"
        assert isinstance(make_judge("alwaysharmful"), Always)
        res = alignlab.run_redteam("echotest:anything", attacks="direct", limit=2, judge="alwaysharmful",
                                   report=False)
        assert res.asr == 1.0
    finally:
        BACKENDS.pop("echotest", None)
        JUDGES.pop("alwaysharmful", None)


def test_a_plugin_suite_registers_without_editing_alignlab(tmp_path):
    from alignlab.evals import SUITES, register_suite
    from alignlab.judges.rubric import SUITE_RUBRICS

    items = tmp_path / "items.jsonl"
    rows = [{"id": f"q{i}", "suite": "mysuite", "kind": "mc", "question": f"Pick one ({i})",
             "choices": ["agree", "disagree"], "matching": [0]} for i in range(4)]
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    register_suite("mysuite", items, "A test suite.", "agrees", levels=(2,), rubric="Agreement.")
    try:
        res = alignlab.run_eval("scripted:A", suites="mysuite", report=False)
        assert res.suites["mysuite"]["n"] == 4 and SUITE_RUBRICS["mysuite"] == "Agreement."
        with pytest.raises(AlignlabError, match="taken"):
            register_suite("mysuite", items, "again", "again")
    finally:
        SUITES.pop("mysuite", None)
        SUITE_RUBRICS.pop("mysuite", None)


def test_every_error_class_derives_from_alignlab_error():
    import importlib
    import pkgutil

    missing = []
    for m in pkgutil.walk_packages(alignlab.__path__, "alignlab."):
        if m.name.startswith("alignlab.cli") or m.name == "alignlab.__main__":
            continue
        mod = importlib.import_module(m.name)
        for name, obj in vars(mod).items():
            if (inspect.isclass(obj) and obj.__module__ == m.name and issubclass(obj, Exception)
                    and name != "StopForward" and not issubclass(obj, AlignlabError)):
                missing.append(f"{m.name}.{name}")
    assert missing == []


def _readme_python_example() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"```python\n(.*?)```", text, re.S)
    assert m, "README.md has no ```python example"
    return m.group(1)


@pytest.mark.slow
def test_readme_example(tmp_path):
    """README's first Python block, verbatim, on the embedded model."""
    code = _readme_python_example()
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ASR (harmful, behavior-level)" in out.stdout
    where = tmp_path / "redteam-out"
    assert {p.name for p in where.iterdir()} >= {"results.json", "hits.jsonl", "report.html"}
    assert len(json.loads((where / "results.json").read_text())["config"]["behaviors"]) == 4


PLUGIN = '''
from alignlab.models.base import user
from alignlab.redteam import register_attack
from alignlab.redteam.attacks import TemplateAttack


@register_attack
class Whisper(TemplateAttack):
    name = "test_whisper"
    description = "The request in lower case."

    def build(self, behavior, rng, variant):
        return user(behavior.prompt.lower())
'''


def test_plugins_load_from_the_environment_and_fail_in_one_line(tmp_path, monkeypatch):
    from alignlab.plugins import load_plugins
    from alignlab.redteam.attacks import ATTACKS

    (tmp_path / "my_alignlab_plugin.py").write_text(PLUGIN)
    (tmp_path / "broken_alignlab_plugin.py").write_text("raise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        monkeypatch.setenv("ALIGNLAB_PLUGINS", "my_alignlab_plugin")
        assert load_plugins() == ["my_alignlab_plugin"] and "test_whisper" in ATTACKS
        assert load_plugins() == []  # once per process
        with pytest.raises(AlignlabError, match="plugin 'broken_alignlab_plugin'.*RuntimeError: no GPU here"):
            load_plugins("broken_alignlab_plugin")
    finally:
        ATTACKS.pop("test_whisper", None)


def test_the_cli_loads_plugins_first(tmp_path):
    """A plugin's attack is listed by the CLI; a broken plugin is one error line, exit 2."""
    (tmp_path / "my_cli_plugin.py").write_text(PLUGIN)
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{ROOT / 'src'}",
           "ALIGNLAB_PLUGINS": "my_cli_plugin"}
    out = subprocess.run([sys.executable, "-m", "alignlab", "redteam", "--list-attacks"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0 and "test_whisper" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "alignlab", "runs"], capture_output=True, text=True,
                         env={**env, "ALIGNLAB_PLUGINS": "no_such_plugin_module"})
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    line = bad.stderr.strip()
    assert line.startswith("error: plugin 'no_such_plugin_module'") and len(line.splitlines()) == 1
