"""Where every media call meets the usage tracker (:mod:`runcrate_integrations.usage`): two
private hooks, called by :class:`~runcrate_integrations.media.MediaClient` and nowhere else.

* :func:`_before_spend` is entered just before a request that costs money is sent (the three
  that start a billed job, ``/images/generations``, ``/audio/speech``, ``/videos``, and
  ``/audio/transcriptions``) and left when the call ends: every budget around the call holds
  its worst case meanwhile, or refuses it with
  :class:`~runcrate_integrations.errors.BudgetExceededError`, unsent.
* :func:`_account` runs once per successful media call, with the units it produced: images
  made, video seconds, characters spoken, audio seconds transcribed, each taken from the
  answer where it says so, else from the request.

The media calls look them up on this module when they run, so a hook patched here in a test is
the one called.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

from ..net.clients import Clients
from ..usage import calls


def _before_spend(
    clients: Clients,
    model: str,
    *,
    endpoint: str,
    images: int = 0,
    video_seconds: float | None = 0.0,
    speech_characters: int = 0,
    audio_seconds: float | None = 0.0,
) -> AbstractContextManager[object]:
    """A request to ``endpoint`` for ``model`` is about to be sent and will be billed for at
    most these units (``None``: not known before the answer, so a budget cannot bound it)."""
    meter = calls.reserve_media(
        model,
        images=images,
        video_seconds=video_seconds,
        speech_characters=speech_characters,
        audio_seconds=audio_seconds,
    )
    return meter if meter is not None else contextlib.nullcontext()


def _account(
    clients: Clients,
    model: str,
    *,
    endpoint: str,
    images: int = 0,
    video_seconds: float = 0.0,
    speech_characters: int = 0,
    audio_seconds: float = 0.0,
) -> None:
    """One successful request to ``endpoint`` for ``model`` and the units it produced."""
    calls.record_media(
        model,
        images=images,
        video_seconds=video_seconds,
        speech_characters=speech_characters,
        audio_seconds=audio_seconds,
    )
