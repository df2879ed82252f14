"""What "now" means for silence: the camera's event time, advanced by this worker's wall clock.

A camera's "now" is its last seen event time plus the wall-clock time since this worker last
*received* one of its heartbeats. So the silence timer

- notices a camera that stopped sending even when nothing else flows (no heartbeat received
  for the tolerance means silent), which a pure event-time watermark cannot do for a camera
  alone on its partition or when every camera goes quiet at once;
- never mistakes a backlog for silence: while old heartbeats are being replayed (after a crash
  or a deploy) they keep arriving, so the camera's "now" stays at its replayed event time
  instead of jumping to today and declaring every camera silent;
- never mistakes a stall of the worker itself for silence (a broker restart, a consumer group
  rejoining): the timer's ticks travel through the broker like the heartbeats, stamped when
  sent (`stamp`), and one that comes back later than `stall_s` (`came_back`) shows the worker
  received nothing meanwhile. Then every camera counts as received at that moment, as after a
  restart, and the ticks computed before it (an older epoch) no longer hold;
- stamps the silence in event time (at last_seen + tolerance, see `smartcity.health`), so an
  incident has the same id whether the timer or the camera's next heartbeat revealed it.

After a restart a camera counts as received when the worker first sees it in its table.
Monotonic time, so wall-clock jumps (NTP) do not fake silence.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Ticks come back within a fraction of a second when the worker keeps up.
DEFAULT_STALL_S = 15.0


class ReceiptClock:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic,
                 stall_s: float = DEFAULT_STALL_S) -> None:
        self._monotonic = monotonic
        self._received: dict[str, float] = {}
        self.stall_s = stall_s
        # Monotonic stamps only compare within one process: its ticks carry its own token.
        self._token = uuid.uuid4().hex[:12]
        self._resets = 0

    @property
    def epoch(self) -> str:
        return f"{self._token}:{self._resets}"

    def heard(self, camera_id: str) -> None:
        self._received[camera_id] = self._monotonic()

    def heard_all(self, camera_ids: Iterable[str]) -> None:
        """`heard` for the cameras of one batch, at one moment."""
        mono = self._monotonic()
        received = self._received
        for camera_id in camera_ids:
            received[camera_id] = mono

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

    def stamp(self) -> dict[str, Any]:
        """What a tick carries so that `came_back` can judge it."""
        return {"epoch": self.epoch, "sent": self._monotonic()}

    def came_back(self, stamp: Mapping[str, Any]) -> bool:
        """A tick came back through the broker: whether the silence it was computed for holds.

        A tick of this process that took longer than `stall_s` means the worker was not
        receiving meanwhile: every camera counts as received now, and the epoch moves on. A tick
        of another epoch (before such a stall, or of another process) does not hold.
        """
        epoch = str(stamp.get("epoch", ""))
        if epoch.partition(":")[0] == self._token:
            try:
                sent = float(stamp["sent"])
            except (KeyError, TypeError, ValueError):
                return False
            if self._monotonic() - sent > self.stall_s:
                self.stalled()
        return epoch == self.epoch

    def stalled(self) -> None:
        """The worker received nothing for a while: what it did not hear is not silence."""
        self._received.clear()
        self._resets += 1
