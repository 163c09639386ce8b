"""Each package's public names: one list (``__all__``), every name resolves, nothing else is
exported by accident, and an adapter without its extra says which extra to install."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PUBLIC = {
    "runcrate_integrations": {
        "API_KEY_ENV",
        "BASE_URL_ENV",
        "DEFAULT_BASE_URL",
        "APIConnectionError",
        "APIStatusError",
        "APITimeoutError",
        "AuthenticationError",
        "BadRequestError",
        "ClientSettings",
        "ConflictError",
        "UnprocessableEntityError",
        "RateLimitState",
        "rate_limit_state",
        "ContextLengthExceededError",
        "InsufficientCreditsError",
        "InternalServerError",
        "MissingAPIKeyError",
        "ModelInfo",
        "NotFoundError",
        "PermissionDeniedError",
        "RateLimitError",
        "ResponseFormatError",
        "RuncrateAPIError",
        "RuncrateError",
        "StreamErrorEvent",
        "StreamInterruptedError",
        "__version__",
        "alist_models",
        "cached_model_info",
        "list_models",
        "BudgetExceededError",
        "JobFailedError",
        "JobTimeoutError",
        "JobCancelledError",
        "StructuredOutputError",
        "track_usage",
        "UsageTracker",
        "ModelUsage",
        "RuncrateBilling",
        "Balance",
        "BillingUsage",
        "Transaction",
    },
    "langchain_runcrate": {
        "ChatRuncrate",
        "RuncrateEmbeddings",
        "ModelInfo",
        "list_models",
        "alist_models",
        "RuncrateAPIStatusError",
        "RuncrateAuthenticationError",
        "RuncrateBadRequestError",
        "RuncrateConnectionError",
        "RuncrateContextOverflowError",
        "RuncrateConflictError",
        "RuncrateUnprocessableEntityError",
        "RuncrateInsufficientCreditsError",
        "RuncrateInternalServerError",
        "RuncrateInvalidRequestError",
        "RuncrateNotFoundError",
        "RuncratePermissionDeniedError",
        "RuncrateRateLimitError",
        "RuncrateResponseFormatError",
        "RuncrateStreamErrorEvent",
        "RuncrateStreamInterruptedError",
        "RuncrateStructuredOutputError",
        "RuncrateTimeoutError",
        "__version__",
        "track_usage",
        "get_runcrate_callback",
        "RuncrateCallback",
        "RuncrateBilling",
        "BudgetExceededError",
        "RuncrateJobTimeoutError",
        "RuncrateImageGenerationTool",
        "RuncrateTextToSpeechTool",
        "RuncrateVideoGenerationTool",
        "RuncrateSpeechToTextTool",
        "RuncrateToolkit",
        "RuncrateTranscriptionParser",
    },
    "llama_index_runcrate": {
        "RuncrateLLM",
        "RuncrateEmbedding",
        "RuncrateUsageHandler",
        "RuncrateUsageEvent",
        "track_usage",
        "RuncrateBilling",
        "BudgetExceededError",
        "RuncrateToolSpec",
        "RuncrateTranscriptionReader",
    },
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_one_export_list_and_every_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == PUBLIC[package]
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError):
        _ = module.NoSuchName


def test_langchain_error_classes_are_the_core_classes_too() -> None:
    import runcrate_integrations as core
    from langchain_runcrate import errors

    for name in set(errors.__all__) - {"to_langchain_error"}:
        cls = getattr(errors, name)
        assert issubclass(cls, core.RuncrateError), name


BLOCKED_IMPORT = """
import sys
from importlib.abc import MetaPathFinder

class Missing(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {top!r} and name.startswith({blocked!r}):
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return None

sys.meta_path.insert(0, Missing())
try:
    import {package}
except ImportError as exc:
    print(exc)
"""


@pytest.mark.parametrize(
    ("package", "blocked", "extra"),
    [
        ("llama_index_runcrate", "llama_index.core", "llama-index"),
        ("langchain_runcrate", "langchain_core", "langchain"),
    ],
)
def test_importing_an_adapter_without_its_extra_names_the_extra(
    package: str, blocked: str, extra: str
) -> None:
    code = BLOCKED_IMPORT.format(top=blocked.split(".")[0], blocked=blocked, package=package)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f'pip install "runcrate-integrations[{extra}]"' in result.stdout
    assert f'pip install -e ".[{extra}]"' in result.stdout
