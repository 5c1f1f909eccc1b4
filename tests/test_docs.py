"""The doc-test harness (tests/fixtures_docs.py) keeps its promises, and misses no block.

The blocks themselves run as items of README.md and docs/*.md; these tests hold the rules
they run by: a fresh process per block, one folder per file, strict failures and markers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sybil import Document, Example
from sybil.example import SybilFailure
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

from tests.fixtures_docs import DOCS, REPO, DocStack

RUN = {"python", "bash", "cypher"}
#: Fences the doc tests do not run, and why.
NOT_RUN = {
    "": "program output, folder trees and command synopses",
    "sql": "DBA reference for psql; the same calls are tested by pgTAP (tests/sql)",
    "mermaid": "a diagram",
}


def _examples(tmp_path: Path, text: str) -> list[Example]:
    path = tmp_path / "sample.md"
    path.write_text(text, encoding="utf-8")
    document = DOCS.parse(path)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    document.namespace["doc_stack"] = DocStack(tmp_path, env, graph_uri="unused")
    return list(document.examples())


def test_blocks_of_a_file_share_a_folder_but_not_a_process(tmp_path: Path) -> None:
    examples = _examples(
        tmp_path,
        "```bash\necho hello > note.txt\n```\n\n"
        "```python\nimport os\nleft = 1\nopen('pid', 'w').write(str(os.getpid()))\n```\n\n"
        "```python\nimport os\nassert 'left' not in globals()\n"
        "assert open('note.txt').read() == 'hello\\n'\n"
        "assert open('pid').read() != str(os.getpid())\n```\n",
    )
    assert len(examples) == 3
    for example in examples:
        example.evaluate()


@pytest.mark.parametrize(
    ("block", "shown"),
    [
        ("```bash\necho boom\nexit 3\n```\n", "bash exited 3"),
        ("```bash\nfalse\necho still here\n```\n", "bash exited 1"),  # bash -e
        ("```bash\nfalse | cat\n```\n", "bash exited 1"),  # pipefail
        ("```python\nraise SystemExit('boom')\n```\n", "boom"),
    ],
)
def test_a_failing_block_fails_with_its_output(tmp_path: Path, block: str, shown: str) -> None:
    (example,) = _examples(tmp_path, block)
    with pytest.raises(SybilFailure, match=re.escape(shown)):
        example.evaluate()


def test_xfail_marker_is_strict(tmp_path: Path) -> None:
    failing = _examples(tmp_path, "<!-- xfail: known bug -->\n```bash\nexit 1\n```\n")
    passing = _examples(tmp_path, "<!-- xfail: known bug -->\n```bash\ntrue\n```\n")
    failing[0].evaluate()
    with pytest.raises(pytest.xfail.Exception, match="known bug"):
        failing[1].evaluate()
    passing[0].evaluate()
    with pytest.raises(SybilFailure, match="passes now: remove its xfail marker"):
        passing[1].evaluate()


def test_every_fenced_block_in_the_docs_is_run_or_knowingly_not() -> None:
    lexer = RawFencedCodeBlockLexer(
        info_pattern=re.compile(r"(?P<language>[^\n]*)$\n", re.MULTILINE),
        mapping={"language": "language"},
    )
    seen: dict[str, int] = {}
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        document = Document(path.read_text(encoding="utf-8"), str(path))
        for region in lexer(document):
            language = str(region.lexemes["language"]).strip()
            assert language in RUN | NOT_RUN.keys(), f"{path.name}: a ```{language} block"
            seen[language] = seen.get(language, 0) + 1
    assert seen.get("python", 0) >= 3 and seen.get("bash", 0) >= 3, seen


def test_a_file_marker_writes_the_next_block_for_later_blocks(tmp_path: Path) -> None:
    examples = _examples(
        tmp_path,
        "<!-- file: pkg/mod.py -->\n```python\nVALUE = 41 + 1\n```\n\n"
        "```python\nfrom pkg.mod import VALUE\nassert VALUE == 42\n```\n\n"
        "<!-- file: broken.py -->\n```python\ndef oops(:\n```\n",
    )
    assert len(examples) == 5  # two markers, three blocks
    for example in examples[:3]:
        example.evaluate()
    assert (tmp_path / "pkg" / "mod.py").read_text() == "VALUE = 41 + 1\n"
    examples[3].evaluate()
    with pytest.raises(SyntaxError):
        examples[4].evaluate()
