"""Import paths: lazy package exports, the ``llama_index.llms.runcrate`` alias, no LangChain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import llama_index_runcrate

ROOT = Path(__file__).resolve().parents[3]

# Runs in a fresh interpreter where LangChain and llama-index-llms-openai cannot be imported.
ISOLATED = """
import sys
from importlib.abc import MetaPathFinder

class Block(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("langchain", "langchain_core", "langchain_openai") or (
                name.startswith("llama_index.llms.openai")):
            raise ImportError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, Block())
import llama_index_runcrate
assert "llama_index.core" not in sys.modules, "the package import should stay lazy"
from llama_index_runcrate import RuncrateLLM
import llama_index.core
from llama_index.llms.runcrate import RuncrateLLM as Alias
from llama_index.embeddings.runcrate import RuncrateEmbedding
assert Alias is RuncrateLLM
assert RuncrateEmbedding is llama_index_runcrate.RuncrateEmbedding
# A closed local port: metadata reads the catalog on first use and falls back at once.
llm = RuncrateLLM(model="deepseek/deepseek-v3.2", api_key="rc_live_x", base_url="http://127.0.0.1:9/v1")
assert llm.metadata.is_chat_model
print(sorted(m for m in sys.modules if m.startswith(("langchain", "llama_index.llms.openai"))))
"""


def test_works_without_langchain_or_llama_index_llms_openai() -> None:
    result = subprocess.run(
        [sys.executable, "-c", ISOLATED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_alias_lives_beside_llama_index_core() -> None:
    import llama_index.core

    import llama_index
    from llama_index.embeddings.runcrate import RuncrateEmbedding as EmbeddingAlias
    from llama_index.llms.runcrate import RuncrateLLM as Alias
    from llama_index_runcrate.embeddings import RuncrateEmbedding
    from llama_index_runcrate.llms import RuncrateLLM

    assert Alias is RuncrateLLM
    assert EmbeddingAlias is RuncrateEmbedding
    portions = [Path(p) for p in llama_index.__path__]
    assert Path(llama_index.core.__file__).parent.parent in portions  # site-packages' portion
    assert (ROOT / "llama_index") in portions
    assert not (ROOT / "llama_index" / "__init__.py").exists()
    assert not (ROOT / "llama_index" / "llms" / "__init__.py").exists()
    assert not (ROOT / "llama_index" / "embeddings" / "__init__.py").exists()
    from llama_index.readers.runcrate import RuncrateTranscriptionReader
    from llama_index.tools.runcrate import RuncrateToolSpec

    assert RuncrateToolSpec is llama_index_runcrate.RuncrateToolSpec
    assert RuncrateTranscriptionReader is llama_index_runcrate.RuncrateTranscriptionReader
    for space in ("tools", "readers"):
        assert not (ROOT / "llama_index" / space / "__init__.py").exists()


def test_lazy_exports() -> None:
    from llama_index_runcrate.llms import RuncrateLLM

    assert llama_index_runcrate.RuncrateLLM is RuncrateLLM
    assert set(llama_index_runcrate.__all__) == {
        "RuncrateLLM",
        "RuncrateEmbedding",
        "RuncrateToolSpec",
        "RuncrateTranscriptionReader",
        "RuncrateUsageHandler",
        "RuncrateUsageEvent",
        "track_usage",
        "RuncrateBilling",
        "BudgetExceededError",
    }
    from runcrate_integrations.usage import track_usage

    assert llama_index_runcrate.track_usage is track_usage
    assert "RuncrateEmbedding" in dir(llama_index_runcrate)
    with pytest.raises(AttributeError, match="NoSuchThing"):
        _ = llama_index_runcrate.NoSuchThing
