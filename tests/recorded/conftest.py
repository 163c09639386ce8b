"""Cassette-backed tests: every test here replays real exchanges recorded by ``scripts/record``.

Every test in this folder gets ``pytest.mark.vcr`` (the standard LangChain suites mark only
one test themselves). Models are built with :mod:`tests.vcr_support`'s settings: while
recording, the server and model ids ``scripts/record`` exports; in replay, the default
Runcrate URL, the key from the environment and the model ids of ``cassettes/recording.json``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import vcr_support

HERE = Path(__file__).resolve().parent
REPLAY_KEY = "rc_live_dummy_key_for_replay"


def _framework(item: pytest.Item) -> str | None:
    """``langchain``/``llama_index`` for a test under this folder, else None."""
    try:
        rel = item.path.relative_to(HERE)
    except ValueError:
        return None
    return rel.parts[0] if len(rel.parts) > 1 else ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _framework(item) is None:
            continue
        if item.get_closest_marker("vcr") is None:
            item.add_marker(pytest.mark.vcr)
        if "benchmark" in getattr(item, "fixturenames", ()):
            # A benchmark replays the one recorded exchange for every round it times.
            item.add_marker(pytest.mark.vcr(allow_playback_repeats=True))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if vcr_support.recording():
        folders = {_framework(item) for item in session.items}
        vcr_support.note_recorded_folders({f for f in folders if f})


@pytest.fixture(autouse=True)
def _replay_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # In replay the key is never sent anywhere; the adapters only need one to exist.
    if not vcr_support.recording() and not os.environ.get("RUNCRATE_API_KEY"):
        monkeypatch.setenv("RUNCRATE_API_KEY", REPLAY_KEY)


@pytest.fixture
def chat_model_id() -> str:
    return vcr_support.chat_model()


@pytest.fixture
def reasoning_model_id() -> str:
    return vcr_support.reasoning_model()


@pytest.fixture
def embedding_model_id() -> str:
    return vcr_support.embedding_model()


@pytest.fixture
def vision_model_id() -> str:
    """The vision model recorded with, or a skip when the cassettes have none."""
    model = vcr_support.vision_model()
    if model is None:
        pytest.skip(
            "needs a vision model cassette: record against live Runcrate with "
            "RUNCRATE_TEST_VISION_MODEL set (see cassettes/README.md)"
        )
    return model


@pytest.fixture
def chat_url() -> str | None:
    return vcr_support.base_url("chat")


@pytest.fixture
def reasoning_url() -> str | None:
    return vcr_support.base_url("reasoning")


@pytest.fixture
def embeddings_url() -> str | None:
    return vcr_support.base_url("embeddings")
