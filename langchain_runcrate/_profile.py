"""``ChatRuncrate.profile`` from Runcrate's model catalog, never from a hard-coded table.

Only the core's catalog *cache* is read (no network call); :func:`list_models` fills it. A
capability the catalog does not state is left out of the profile rather than guessed.
"""

from __future__ import annotations

from langchain_core.language_models import ModelProfile

from runcrate_integrations.catalog import ModelInfo, cached_model_info

_REASONING_FEATURES = frozenset({"reasoning", "reasoning_content", "thinking"})


def profile_from_info(info: ModelInfo) -> ModelProfile:
    """The LangChain profile keys that a catalog entry determines."""
    profile = ModelProfile()
    if info.context_length is not None:
        profile["max_input_tokens"] = info.context_length
    if info.input_modalities:
        inputs = set(info.input_modalities)
        profile["text_inputs"] = "text" in inputs
        profile["image_inputs"] = "image" in inputs
        profile["image_url_inputs"] = "image" in inputs
        profile["audio_inputs"] = "audio" in inputs
        profile["video_inputs"] = "video" in inputs
    if info.output_modalities:
        outputs = set(info.output_modalities)
        profile["text_outputs"] = "text" in outputs
        profile["image_outputs"] = "image" in outputs
    tools = info.supports_tools
    if tools is not None:
        profile["tool_calling"] = tools
        profile["tool_choice"] = tools
        profile["tool_call_streaming"] = tools
    structured = info.supports_structured_output
    if structured is not None:
        profile["structured_output"] = structured
    if _REASONING_FEATURES & info.supported_features:
        # Only a positive statement counts: catalogs often omit reasoning from the features.
        profile["reasoning_output"] = True
    return profile


def catalog_profile(base_url: str, model: str) -> ModelProfile | None:
    """The profile of ``model`` at ``base_url`` if the catalog cache knows it, else ``None``."""
    info = cached_model_info(base_url, model)
    if info is None:
        return None
    return profile_from_info(info) or None
