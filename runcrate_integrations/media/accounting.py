"""Where every media call meets the usage tracker: two private hooks, called by
:class:`~runcrate_integrations.media.MediaClient` and nowhere else.

* :func:`_before_spend` runs just before a request that costs money is sent (the three that
  start a billed job, ``/images/generations``, ``/audio/speech``, ``/videos``, and
  ``/audio/transcriptions``): the place for a budget check, which may raise
  :class:`~runcrate_integrations.errors.BudgetExceededError` to stop the call unsent.
* :func:`_account` runs once per successful media call, with the units it produced: images
  made, video seconds, characters spoken, audio seconds transcribed, each taken from the
  answer where it says so, else from the request.

Both do nothing yet; the usage tracker connects them. The media calls look them up on this
module when they run, so a hook connected here (or patched in a test) is the one called.
"""

from __future__ import annotations

from ..net.clients import Clients


def _before_spend(clients: Clients, model: str, *, endpoint: str) -> None:
    """A request to ``endpoint`` for ``model`` is about to be sent and will be billed."""


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
