"""Reports, at the end of the run, how many documentation blocks ran and which did not, and why."""

from __future__ import annotations

import pytest

from .runner import RESULTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    runs = list(RESULTS.values())
    ran = sum(len(r.ran) for r in runs)
    skipped = [b for r in runs for b in r.skipped]
    line = f"docs: ran {ran} blocks from {len(runs)} pages"
    line += f"; {len(skipped)} not run:" if skipped else "; every block ran"
    terminalreporter.write_line(line)
    for block in skipped:
        terminalreporter.write_line(f"  {block.where}: {block.skip}")
