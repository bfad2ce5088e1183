"""Run store: records commit immediately, resume skips done keys, errors name what exists."""

import sqlite3

import pytest

from alignlab.store import RunNotFound


def test_records_are_committed_and_visible_to_another_connection(workspace):
    run = workspace.new_run("redteam", {"seed": 1})
    run.add("a|1", {"x": 1})
    run.add("a|2", {"x": 2})
    # A separate connection (as after a crash) sees both records without any close/flush.
    con = sqlite3.connect(workspace.db_path)
    assert con.execute("SELECT COUNT(*) FROM records WHERE run_id=?", (run.id,)).fetchone()[0] == 2
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_resume_sees_done_keys_and_duplicate_add_keeps_first(workspace):
    run = workspace.new_run("redteam", {"seed": 1})
    run.add("k1", {"v": 1})
    again = workspace.open_run(run.id)
    assert again.done_keys() == {"k1"}
    again.add("k1", {"v": 999})
    assert again.get("k1") == {"v": 1}
    assert [k for k, _ in again.records()] == ["k1"]


def test_records_prefix_and_order(workspace):
    run = workspace.new_run("redteam", {})
    for k in ["attack|b|2", "benign|x", "attack|a|1", "attack_x"]:
        run.add(k, {"k": k})
    assert [k for k, _ in run.records("attack|")] == ["attack|b|2", "attack|a|1"]


def test_run_metadata_and_finish(workspace):
    run = workspace.new_run("redteam", {"seed": 3})
    info = run.info
    assert info.stage == "redteam" and info.status == "running" and info.config == {"seed": 3}
    assert info.version
    run.finish({"asr": 0.5})
    assert workspace.info(run.id).status == "done"
    assert workspace.info(run.id).metrics == {"asr": 0.5}


def test_unknown_run_lists_recent(workspace):
    r = workspace.new_run("redteam", {})
    with pytest.raises(RunNotFound, match=f"not found.*{r.id}"):
        workspace.open_run("nope")
