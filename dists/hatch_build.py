"""The top-level project installs only in editable mode (``pip install -e ".[dev]"``).

Its wheel would hold every package of every distribution in one: exactly the kind of wheel
that shadows the split ones (see runcrate_integrations/_installation.py). Releases are built
by ``bash scripts/build-dists`` (dists/build.py), one wheel per distribution.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class EditableOnly(BuildHookInterface):  # type: ignore[type-arg]  # generic only in some versions
    """Let editable wheels through; stop any other build with the command to use instead."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        raise RuntimeError(
            "This repository is released as several distributions (runcrate-integrations, "
            "langchain-runcrate, llama-index-llms-runcrate, ...), not as one wheel of the "
            "top-level project. Build them with `bash scripts/build-dists` (wheels and sdists "
            'in dist/), or install a checkout for development with `pip install -e ".[dev]"`.'
        )
