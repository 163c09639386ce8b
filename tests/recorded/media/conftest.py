"""Media classes wired for recording (the local media server, or Runcrate) and replay.

While ``scripts/record`` runs, requests go to ``RUNCRATE_MEDIA_BASE_URL`` (the local media
server of ``../shared/local-media/serve`` with ``--local``) and video jobs are polled about
once a second (jobs there take about 2 s); in replay they go to the default Runcrate URL, the
cassette answers, and the recorded polls are replayed without waiting. Models are the media
classes' defaults, Runcrate's catalog ids (the local server answers any id). Images are asked
for at 256x256 (the local stand-in draws them at 1/8 of that), to keep cassettes small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import vcr_support

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
#: Real speech (the local server's piper voice), kept in the repository because a cassette
#: matches an upload by its SHA-256: "The standup moves to ten o'clock on Friday. Bring the
#: release notes."
STANDUP = FIXTURES / "standup.mp3"
SMALL_IMAGES = {"width": 256, "height": 256}


def connection() -> dict[str, Any]:
    """Connection settings of every media class here (no retries: a missing cassette fails
    at once; the key comes from the environment)."""
    return {"base_url": vcr_support.base_url("media"), "max_retries": 0}


def polling() -> dict[str, Any]:
    """How often a video job is looked at: about once a second while recording (the local
    server's jobs take 2 s), at once in replay."""
    return {"poll_interval": 1.0 if vcr_support.recording() else 0.001}
