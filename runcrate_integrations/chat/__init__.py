"""Chat completions for both frameworks: the request (:mod:`.request`), the answer and stream
fold (:mod:`.answer`), the engine (:mod:`.engine`) and the model settings (:mod:`.settings`)."""

from __future__ import annotations

from .answer import Completion
from .engine import ChatEngine
from .request import ChatOptions, ChatRequest

__all__ = ["ChatEngine", "ChatOptions", "ChatRequest", "Completion"]
