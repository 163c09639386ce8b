"""The documentation pages and their code blocks, as the docs test sees them.

A *page* is ``README.md`` or any ``docs/*.md``. Every fenced block whose info string is
``python`` (or ``py``) is run, in the order of the page, all blocks of one page sharing one
namespace like the cells of a notebook. Other blocks (``bash``, ``json``, untagged) are text.

A block may be left out only for a stated reason, with an HTML comment (invisible once the
Markdown is rendered) on the line before its fence; blank lines may come between::

    <!-- docs-test: skip "needs a vision model" -->
    ```python
    llm.invoke([HumanMessage(content=[{"type": "image", "url": "https://..."}])])
    ```

The reason is required and is printed by the test run. Any other ``docs-test:`` comment, a
marker without a reason, or a marker not followed by a ``python`` block is an error, so a typo
cannot silently stop a block from running.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNABLE = frozenset({"python", "py"})

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)[^`]*$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")
_LOOSE_MARKER = re.compile(r"<!--\s*docs-test\b")
_SKIP = re.compile(r'^\s*skip\s+"(?P<reason>[^"]*\S[^"]*)"\s*$')


class MarkerError(ValueError):
    """A ``docs-test`` comment that is malformed or in the wrong place."""


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its code, and why it is skipped."""

    page: str  # path relative to the repository root, e.g. "docs/langchain.md"
    line: int  # 1-based line of the first line of code (the line after the opening fence)
    language: str
    code: str
    skip: str | None = None  # the stated reason, when the block is not run

    @property
    def runnable(self) -> bool:
        return self.language in RUNNABLE

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages(root: Path = ROOT) -> list[Path]:
    """Every documentation page: README.md first, then docs/*.md by name."""
    found = [root / "README.md"] if (root / "README.md").exists() else []
    return found + sorted((root / "docs").glob("*.md"))


def relative(path: Path, root: Path = ROOT) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def parse(text: str, page: str) -> list[Block]:
    """All fenced blocks of ``text`` (a page named ``page``), with their skip markers."""
    blocks: list[Block] = []
    lines = text.splitlines()
    pending: tuple[int, str] | None = None  # (line, reason) of a skip marker not yet used
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence is None:
            marker = _MARKER.match(line)
            if marker is not None:
                if pending is not None:
                    raise MarkerError(
                        f"{page}:{pending[0]}: docs-test marker not followed by a "
                        "code block (another marker comes first)"
                    )
                pending = (i + 1, _reason(marker.group("body"), page, i + 1))
            elif _LOOSE_MARKER.search(line):
                raise MarkerError(
                    f"{page}:{i + 1}: a docs-test marker must be a whole line of "
                    f'the form <!-- docs-test: skip "reason" -->'
                )
            elif line.strip() and pending is not None:
                raise MarkerError(
                    f"{page}:{pending[0]}: docs-test marker must be followed by a "
                    f"code block, found text on line {i + 1}"
                )
            i += 1
            continue
        indent, mark = fence.group("indent"), fence.group("fence")
        language = fence.group("info").lower()
        start = i + 1
        end = start
        closing = re.compile(rf"^[ \t]*{re.escape(mark[0])}{{{len(mark)},}}\s*$")
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise MarkerError(f"{page}:{i + 1}: code block is never closed")
        body = [_dedent(raw, indent) for raw in lines[start:end]]
        reason = None
        if pending is not None:
            if language not in RUNNABLE:
                raise MarkerError(
                    f"{page}:{pending[0]}: docs-test marker before a "
                    f"{language or 'plain'} block; only python blocks are run"
                )
            reason = pending[1]
            pending = None
        blocks.append(Block(page, start + 1, language, "\n".join(body) + "\n", reason))
        i = end + 1
    if pending is not None:
        raise MarkerError(f"{page}:{pending[0]}: docs-test marker at the end of the page")
    return blocks


def _reason(body: str, page: str, line: int) -> str:
    skip = _SKIP.match(body)
    if skip is None:
        raise MarkerError(
            f"{page}:{line}: unknown docs-test marker {body.strip()!r}; the only "
            'one is <!-- docs-test: skip "why this block cannot run" -->'
        )
    return skip.group("reason").strip()


def _dedent(line: str, indent: str) -> str:
    return line[len(indent) :] if line.startswith(indent) else line.lstrip()


def page_blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """The python blocks of one page, in order."""
    name = relative(path, root)
    return [b for b in parse(path.read_text(encoding="utf-8"), name) if b.runnable]


def cassette_name(page: str) -> str:
    """``docs/langchain.md`` -> ``langchain.yaml``; ``README.md`` -> ``README.yaml``."""
    return Path(page).with_suffix(".yaml").name
