"""A clear error when an adapter package is imported without the extra it needs."""

from __future__ import annotations

import importlib.util


def require_extra(module: str, *, distribution: str, extra: str, package: str) -> None:
    """Raise ``ImportError`` naming the extra to install when ``module`` cannot be found.

    Only looks the module up (no import), so the adapter package stays cheap to import.
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing (or cannot be imported) too
        found = False
    if not found:
        raise ImportError(
            f"{package} needs {distribution}, which is not installed: "
            f'pip install "runcrate-integrations[{extra}]" '
            f'(from a checkout: pip install -e ".[{extra}]")',
            name=module,
        )
