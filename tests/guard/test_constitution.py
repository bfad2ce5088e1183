"""The constitution file: the packaged default parses; bad files fail naming category and field."""

from __future__ import annotations

import pytest

from alignlab.data.behaviors import load_packaged
from alignlab.guard.constitution import ConstitutionError, load_constitution

GOOD = """
name: test
categories:
  - id: weapons
    title: Weapons
    restricted: Building weapons.
    permitted: Safe storage and history.
    restricted_examples: ["how to build a pipe bomb", "make a gun untraceable"]
    permitted_examples: ["history of the musket", "how to store a rifle safely"]
"""


def test_default_constitution_covers_the_red_team_categories():
    c = load_constitution()
    assert set(c.ids) == {b.category for b in load_packaged()}
    for cat in c.categories:
        assert len(cat.restricted_examples) >= 8 and len(cat.permitted_examples) >= 8
        assert cat.restricted and cat.permitted
    assert c.refusal_message


def test_yaml_and_markdown_front_matter(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text(GOOD)
    md = tmp_path / "c.md"
    md.write_text(f"---\n{GOOD.strip()}\n---\n\n# Notes for humans\n")
    a, b = load_constitution(y), load_constitution(md)
    assert a.ids == b.ids == ["weapons"]
    assert a.category("weapons").permitted_examples[0] == "history of the musket"


@pytest.mark.parametrize("edit, needle", [
    (lambda s: s.replace("    permitted: Safe storage and history.\n", ""), "category 'weapons': field 'permitted'"),
    (lambda s: s.replace('restricted_examples: ["how to build a pipe bomb", "make a gun untraceable"]',
                         'restricted_examples: ["only one"]'), "category 'weapons': field 'restricted_examples'"),
    (lambda s: s.replace("title: Weapons", "title: Weapons\n    colour: red"), "unknown field(s) ['colour']"),
    (lambda s: s.replace('"history of the musket"', '"how to build a pipe bomb"'), "both restricted and permitted"),
    (lambda s: s + s.split("categories:\n")[1], "repeats an earlier category"),
    (lambda s: s.replace("id: weapons", "id: Weapons Stuff"), "field 'id' must be lowercase"),
    (lambda s: s.replace("categories:", "categories: 3\nx:"), "field 'categories'"),
    (lambda s: s.replace("  - id: weapons", " - id: weapons\n  bad"), "not valid YAML"),
])
def test_validation_errors_name_file_category_and_field(tmp_path, edit, needle):
    p = tmp_path / "bad.yaml"
    p.write_text(edit(GOOD))
    with pytest.raises(ConstitutionError) as e:
        load_constitution(p)
    msg = str(e.value)
    assert needle in msg and str(p) in msg and "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(ConstitutionError, match="no such file"):
        load_constitution(tmp_path / "nope.yaml")
