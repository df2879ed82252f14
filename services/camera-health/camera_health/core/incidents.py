"""Incidents of one camera, driven by its health changes.

- OK -> PROBLEM/CRITICAL with no incident open: an incident opens at the change (event time),
  its cause the worst firing check; its id is derived from camera and opening time.
- Further non-OK changes (escalation, a different check) stay in the same incident; the
  resolved event reports the worst severity reached.
- Back to OK: the incident resolves once the camera has stayed OK for `hold_s`, and then at the
  moment it became OK (so `duration` is the real outage). A camera that fails again within the
  hold continues the same incident: a flapping camera makes one long incident, not a storm.
  The hold is judged at the camera's own event times (heartbeats), never at wall-clock ticks,
  so the same input always gives the same incidents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from camera_health.core.model import OPENED, RESOLVED, IncidentEvent, incident_id_for
from smartcity.health import Health, HealthChange, Reason


@dataclass
class OpenIncident:
    incident_id: str
    opened_at: float
    cause: str
    severity: Health
    worst: Health
    reasons: tuple[Reason, ...]
    ok_since: float | None = None


@dataclass
class IncidentTracker:
    camera_id: str
    current: OpenIncident | None = None

    @property
    def open_id(self) -> str:
        return self.current.incident_id if self.current else ""

    def on_change(self, change: HealthChange, site_id: str) -> list[IncidentEvent]:
        """Follows a health change; returns the event of a newly opened incident, if any."""
        if change.after == Health.OK:
            if self.current is not None:
                self.current.ok_since = change.at
            return []
        if self.current is not None:
            self.current.worst = max(self.current.worst, change.after)
            self.current.ok_since = None
            return []
        cause = change.reasons[0].check if change.reasons else "unknown"
        self.current = OpenIncident(incident_id_for(self.camera_id, change.at), change.at, cause,
                                    change.after, change.after, change.reasons)
        return [self._event(OPENED, site_id, self.current.severity)]

    def settle(self, at: float, hold_s: float, site_id: str) -> list[IncidentEvent]:
        """Resolves the open incident when the camera has been OK for the hold by `at`."""
        current = self.current
        if current is None or current.ok_since is None or at - current.ok_since < hold_s:
            return []
        event = self._event(RESOLVED, site_id, current.worst, resolved_at=current.ok_since)
        self.current = None
        return [event]

    def _event(self, phase: str, site_id: str, severity: Health,
               resolved_at: float | None = None) -> IncidentEvent:
        assert self.current is not None
        c = self.current
        return IncidentEvent(c.incident_id, self.camera_id, site_id, phase, severity, c.cause,
                             c.reasons, c.opened_at, resolved_at)

    def to_dict(self) -> dict[str, Any] | None:
        c = self.current
        if c is None:
            return None
        return {"id": c.incident_id, "at": c.opened_at, "cause": c.cause, "sev": int(c.severity),
                "worst": int(c.worst), "ok": c.ok_since,
                "r": [[r.check, int(r.severity), r.detail, r.since] for r in c.reasons]}

    @classmethod
    def from_dict(cls, camera_id: str, data: Mapping[str, Any] | None) -> IncidentTracker:
        if data is None:
            return cls(camera_id)
        reasons = tuple(Reason(str(ch), Health(int(sev)), str(det), float(since))
                        for ch, sev, det, since in data.get("r", []))
        return cls(camera_id, OpenIncident(str(data["id"]), float(data["at"]), str(data["cause"]),
                                           Health(int(data["sev"])), Health(int(data["worst"])),
                                           reasons, data.get("ok")))
