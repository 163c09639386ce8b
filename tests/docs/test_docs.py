"""Every python block of README.md and docs/*.md runs, against its page's recorded cassette.

One test per page (``test_page[docs/langchain.md]``) runs the page's blocks in order in one
namespace; a block marked ``<!-- docs-test: skip "reason" -->`` is reported by
``test_block_not_run[...]`` with its reason instead. A new page under ``docs/`` is picked up
by itself; record its cassette with ``scripts/record-docs --local docs/<page>.md``.
See ``tests/docs/pages.py`` for the marker and ``tests/docs/runner.py`` for replay/recording.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from .pages import ROOT, Block, MarkerError, cassette_name, page_blocks, pages, parse, relative
from .runner import CASSETTES, RECORDING_INFO, run_page

PAGES = pages()


def _skipped_blocks() -> list[Block]:
    found: list[Block] = []
    for path in PAGES:
        with contextlib.suppress(MarkerError):  # test_page reports it
            found += [b for b in page_blocks(path) if b.skip is not None]
    return found


@pytest.mark.parametrize("path", PAGES, ids=lambda p: relative(p))
def test_page(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run_page(path, monkeypatch, tmp_path)


@pytest.mark.parametrize("block", _skipped_blocks(), ids=lambda b: b.where)
def test_block_not_run(block: Block) -> None:
    pytest.skip(f"{block.where} not run: {block.skip}")


def test_first_hour_pages_keep_runnable_blocks() -> None:
    # README and the framework pages are the user's first hour: they must keep runnable code.
    for name in ("README.md", "docs/langchain.md", "docs/llama_index.md", "docs/embeddings.md",
                 "docs/errors.md", "docs/upgrading.md"):
        blocks = page_blocks(ROOT / name)
        assert [b for b in blocks if b.skip is None], f"{name} has no python block that runs"


def test_cassettes_belong_to_pages() -> None:
    names = [cassette_name(relative(p)) for p in PAGES]
    assert len(names) == len(set(names)), f"two pages would share a cassette: {sorted(names)}"
    stale = sorted(p.name for p in CASSETTES.glob("*.yaml") if p.name not in names)
    assert not stale, f"cassettes/docs/ holds cassettes of no page (delete them): {stale}"
    if RECORDING_INFO.exists():
        recorded = set(json.loads(RECORDING_INFO.read_text()))
        unknown = recorded - {relative(p) for p in PAGES}
        assert not unknown, f"cassettes/docs/recording.json names no longer existing pages: " \
                            f"{sorted(unknown)}"


# ---------------------------------------------------------------------- the marker itself


def test_marker_skips_the_next_python_block_with_its_reason() -> None:
    text = ('Text.\n\n<!-- docs-test: skip "needs a vision model" -->\n\n```python\nx = 1\n```\n'
            "```python\ny = 2\n```\n```bash\nls\n```\n")
    blocks = parse(text, "page.md")
    assert [(b.language, b.line, b.skip) for b in blocks] == [
        ("python", 6, "needs a vision model"), ("python", 9, None), ("bash", 12, None)]
    assert blocks[0].code == "x = 1\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- docs-test: skip -->\n```python\nx\n```\n", "unknown docs-test marker"),
        ('<!-- docs-test: skip "" -->\n```python\nx\n```\n', "unknown docs-test marker"),
        ('<!-- docs-test: skipp "why" -->\n```python\nx\n```\n', "unknown docs-test marker"),
        ('<!-- docs-test: skip "why" -->\n```bash\nls\n```\n', "only python blocks are run"),
        ('<!-- docs-test: skip "why" -->\nSome text.\n```python\nx\n```\n', "found text"),
        ('<!-- docs-test: skip "why" -->\n', "end of the page"),
        ('Text <!-- docs-test: skip "why" --> inline.\n```python\nx\n```\n', "whole line"),
        ("```python\nx = 1\n", "never closed"),
    ],
)
def test_a_malformed_or_misplaced_marker_is_an_error(text: str, message: str) -> None:
    with pytest.raises(MarkerError, match=message):
        parse(text, "page.md")


def test_indented_blocks_are_dedented() -> None:
    blocks = parse("- item\n\n  ```python\n  if True:\n      x = 1\n  ```\n", "page.md")
    assert blocks[0].code == "if True:\n    x = 1\n"
