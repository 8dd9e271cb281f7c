"""docs/annotations.md is the one annotations reference: it has a section for every key of the
parser's table (annotations.KEYS), each with its syntax, default, example and interactions, and
no section for a key the parser does not know (other than a marked placeholder). A key added to
the parser without its section here fails this test, so the reference cannot go stale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cronplus.crontab.annotations import KEYS
from cronplus.crontab.parser import parse_crontab

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "annotations.md"
HEADING = re.compile(r"^### `([a-z-]+)=`\n(.*?)(?=^#{2,3} |\Z)", re.MULTILINE | re.DOTALL)
PLACEHOLDER = "PLACEHOLDER"
FACETS = ("- Syntax: ", "- Default: ", "- Example: ", "- Interacts with: ")


def sections() -> dict[str, str]:
    return {m.group(1): m.group(2) for m in HEADING.finditer(REFERENCE.read_text())}


def test_every_key_of_the_parser_has_a_section_in_the_reference() -> None:
    missing = [key for key in KEYS if key not in sections()]
    assert missing == [], f"{REFERENCE}: no '### `KEY=`' section for {missing}: document each key there"


def test_the_reference_documents_no_key_the_parser_does_not_know_except_marked_placeholders() -> None:
    unknown = [key for key, body in sections().items() if key not in KEYS and PLACEHOLDER not in body]
    assert unknown == [], f"{REFERENCE}: sections for keys the parser does not have: {unknown}"


def test_a_placeholder_is_filled_in_once_the_parser_has_its_key() -> None:
    stale = [key for key, body in sections().items() if key in KEYS and PLACEHOLDER in body]
    assert stale == [], f"{REFERENCE}: {stale} now exist in the parser: replace the PLACEHOLDER with the key's section"


@pytest.mark.parametrize("key", sorted(KEYS))
def test_each_section_gives_syntax_default_example_and_interactions(key: str) -> None:
    body = sections().get(key, "")
    assert [facet for facet in FACETS if facet not in body] == [], f"{REFERENCE}: section {key}= lacks a facet"


@pytest.mark.parametrize("key", sorted(KEYS))
def test_each_example_is_a_valid_annotation_of_its_key(key: str) -> None:
    """The example line parses (`...` stands for a sensor's command; pool= gets its pool)."""
    example = re.search(r"- Example: `(.*?)`\n", sections()[key])
    assert example is not None
    line = example.group(1).replace("wait-for=...", "wait-for=true")
    assert re.search(rf"(^|\s){re.escape(key)}=", line), f"the example of {key}= does not use it: {line}"
    text = "# cronplus-pools: gpu=1\n" + line + "\n0 0 * * * true\n"
    if "after=" in line:
        text += "".join(f"# cronplus: name={n}\n0 0 * * * true\n" for n in ("train", "features"))
    parse_crontab(text, path="reference", system=False)  # raises CrontabError on a bad example


def test_the_pools_and_defaults_lines_are_documented_and_the_readme_links_the_reference() -> None:
    text = REFERENCE.read_text()
    assert "## `# cronplus-pools:`" in text and "`# cronplus-defaults: k=v ...`" in text
    assert "docs/annotations.md" in (ROOT / "README.md").read_text()
