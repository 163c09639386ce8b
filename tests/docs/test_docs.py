"""Every python block of README.md and docs/*.md runs, against its page's recorded cassette.

One test per page (``test_page[docs/langchain.md]``) runs the page's blocks in order in one
namespace; a block marked ``<!-- docs-test: skip "reason" -->`` is left out and listed with its
reason at the end of the run (``tests/docs/conftest.py``; ``test_block_not_run`` proves both).
A new page under ``docs/`` is picked up by itself; record its cassette with
``scripts/record-docs --local docs/<page>.md``.
See ``tests/docs/pages.py`` for the marker and ``tests/docs/runner.py`` for replay/recording.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import conftest as docs_conftest
from . import runner
from .pages import ROOT, MarkerError, cassette_name, page_blocks, pages, parse, relative
from .runner import CASSETTES, RECORDING_INFO, PageRun, run_page

PAGES = pages()


@pytest.mark.parametrize("path", PAGES, ids=lambda p: relative(p))
def test_page(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run_page(path, monkeypatch, tmp_path)


# A made-up page: each block leaves a file in the page's working folder when it runs; the
# marked one would also fail the page.
MARKED_PAGE = """Text.

```python
open("first-ran", "w").close()
```

<!-- docs-test: skip "needs a vision model" -->
```python
open("marked-ran", "w").close()
raise RuntimeError("a block marked not to run was run")
```

```python
open("last-ran", "w").close()
```
"""


class _Lines:
    """Stands in for pytest's terminal reporter: keeps what the summary writes."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def _run_made_up_page(
    text: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[dict[str, PageRun], Path]:
    """Run ``text`` as docs/made_up.md through the runner (no cassette: it sends nothing)."""
    results: dict[str, PageRun] = {}
    blocks = [b for b in parse(text, "docs/made_up.md") if b.runnable]
    monkeypatch.setattr(runner, "page_blocks", lambda path: blocks)
    monkeypatch.setattr(runner, "CASSETTES", tmp_path / "cassettes")
    monkeypatch.setattr(runner, "RESULTS", results)
    monkeypatch.setattr(docs_conftest, "RESULTS", results)
    monkeypatch.delenv("RUNCRATE_RECORD_DOCS", raising=False)
    workdir = tmp_path / "work"
    workdir.mkdir()
    return results, workdir


def test_block_not_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A marked block is not run (the blocks around it are) and is reported with its reason."""
    results, workdir = _run_made_up_page(MARKED_PAGE, monkeypatch, tmp_path)
    run = run_page(ROOT / "docs" / "made_up.md", monkeypatch, workdir)
    assert sorted(p.name for p in workdir.iterdir()) == ["first-ran", "last-ran"]
    assert [b.where for b in run.ran] == ["docs/made_up.md:4", "docs/made_up.md:14"]
    assert [(b.where, b.skip) for b in run.skipped] == [
        ("docs/made_up.md:9", "needs a vision model")
    ]
    assert results == {"docs/made_up.md": run}
    report = _Lines()
    docs_conftest.pytest_terminal_summary(report)  # type: ignore[arg-type]  # a stand-in
    assert report.lines == [
        "docs: ran 2 blocks from 1 pages; 1 not run:",
        "  docs/made_up.md:9: needs a vision model",
    ]


def test_blocks_not_run_are_reported_when_their_page_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    failing = MARKED_PAGE.replace('open("last-ran", "w").close()', 'raise ValueError("broken")')
    _, workdir = _run_made_up_page(failing, monkeypatch, tmp_path)
    with pytest.raises(ValueError, match="broken"):
        run_page(ROOT / "docs" / "made_up.md", monkeypatch, workdir)
    assert sorted(p.name for p in workdir.iterdir()) == ["first-ran"]
    report = _Lines()
    docs_conftest.pytest_terminal_summary(report)  # type: ignore[arg-type]  # a stand-in
    assert report.lines == [
        "docs: ran 0 blocks from 1 pages; 1 not run:",
        "  docs/made_up.md:9: needs a vision model",
    ]


def test_first_hour_pages_keep_runnable_blocks() -> None:
    # README and the framework pages are the user's first hour: they must keep runnable code.
    for name in (
        "README.md",
        "docs/langchain.md",
        "docs/llama_index.md",
        "docs/embeddings.md",
        "docs/errors.md",
        "docs/upgrading.md",
    ):
        blocks = page_blocks(ROOT / name)
        assert [b for b in blocks if b.skip is None], f"{name} has no python block that runs"


@pytest.mark.parametrize(
    ("name", "install"),
    [
        ("docs/langchain.md", "pip install -U langchain-runcrate"),
        ("docs/llama_index.md", "pip install llama-index-llms-runcrate"),
    ],
)
def test_each_framework_page_starts_with_its_install_line(name: str, install: str) -> None:
    # Each ecosystem's own install command comes first, before any code on the page.
    text = (ROOT / name).read_text(encoding="utf-8")
    first_block = text.split("```")[1]
    assert first_block.startswith("bash\n") and install in first_block.splitlines()[1]


def test_cassettes_belong_to_pages() -> None:
    names = [cassette_name(relative(p)) for p in PAGES]
    assert len(names) == len(set(names)), f"two pages would share a cassette: {sorted(names)}"
    stale = sorted(p.name for p in CASSETTES.glob("*.yaml") if p.name not in names)
    assert not stale, f"cassettes/docs/ holds cassettes of no page (delete them): {stale}"
    if RECORDING_INFO.exists():
        recorded = set(json.loads(RECORDING_INFO.read_text()))
        unknown = recorded - {relative(p) for p in PAGES}
        assert not unknown, (
            f"cassettes/docs/recording.json names no longer existing pages: {sorted(unknown)}"
        )


# ---------------------------------------------------------------------- the marker itself


def test_marker_skips_the_next_python_block_with_its_reason() -> None:
    text = (
        'Text.\n\n<!-- docs-test: skip "needs a vision model" -->\n\n```python\nx = 1\n```\n'
        "```python\ny = 2\n```\n```bash\nls\n```\n"
    )
    blocks = parse(text, "page.md")
    assert [(b.language, b.line, b.skip) for b in blocks] == [
        ("python", 6, "needs a vision model"),
        ("python", 9, None),
        ("bash", 12, None),
    ]
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


def test_the_recording_router_sends_media_to_the_media_server() -> None:
    from .router import Upstreams

    up = Upstreams(
        chat="http://chat/v1",
        embeddings="http://emb/v1",
        reasoning="http://r/v1",
        media="http://media/v1",
    )
    for path in (
        "/v1/images/generations",
        "/v1/audio/speech",
        "/v1/audio/transcriptions",
        "/v1/videos",
        "/v1/videos/vid_1",
        "/v1/videos/vid_1/download",
        "/v1/files/a.png",
    ):
        assert up.pick(path, b"") == "http://media/v1", path
    assert up.pick("/v1/embeddings", b"") == "http://emb/v1"
    for path in ("/v1/chat/completions", "/v1/models"):
        assert up.pick(path, b'{"model": "m"}') == "http://chat/v1", path
