"""What "now" means for silence: the camera's event time, advanced by this worker's wall clock.

A camera's "now" is its last seen event time plus the wall-clock time since this worker last
*received* one of its heartbeats. So the silence timer

- notices a camera that stopped sending even when nothing else flows (no heartbeat received
  for the tolerance means silent), which a pure event-time watermark cannot do for a camera
  alone on its partition or when every camera goes quiet at once;
- never mistakes a backlog for silence: while old heartbeats are being replayed (after a crash
  or a deploy) they keep arriving, so the camera's "now" stays at its replayed event time
  instead of jumping to today and declaring every camera silent;
- stamps the silence in event time (at last_seen + tolerance, see `smartcity.health`), so an
  incident has the same id whether the timer or the camera's next heartbeat revealed it.

After a restart a camera counts as received when the worker first sees it in its table.
Monotonic time, so wall-clock jumps (NTP) do not fake silence.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ReceiptClock:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._received: dict[str, float] = {}

    def heard(self, camera_id: str) -> None:
        self._received[camera_id] = self._monotonic()

    def now_for(self, camera_id: str, last_seen: float) -> float:
        """The camera's event-time "now" (starts counting at the first call for an unknown one)."""
        mono = self._monotonic()
        received = self._received.setdefault(camera_id, mono)
        return last_seen + (mono - received)

    def silent_after(self, camera_id: str, tolerance_s: float) -> float:
        """The monotonic time after which the camera's "now" is more than `tolerance_s` past its
        last heartbeat (`now_for(...) - last_seen > tolerance_s`): when the timer must look."""
        received = self._received.setdefault(camera_id, self._monotonic())
        return received + tolerance_s

    def forget(self, camera_id: str) -> None:
        self._received.pop(camera_id, None)
