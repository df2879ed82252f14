"""The catalogue's topic names as constants: code names a topic only through these.

The catalogue (`topics.yaml`, read by `smartcity.topics`) is the source of truth for every
topic's partitions, configuration and dead-letter twin; a test checks these names are exactly
its names. Importing this module costs nothing (no Kafka client, no YAML).
"""

from __future__ import annotations

WIFI_AP_TELEMETRY = "wifi.ap-telemetry.v1"
WIFI_CLIENT_SESSIONS = "wifi.client-sessions.v1"
WIFI_AP_TELEMETRY_BATCHES = "wifi.ap-telemetry-batches.v1"
WIFI_CLIENT_SESSION_BATCHES = "wifi.client-session-batches.v1"
WIFI_AP_STATUS = "wifi.ap-status.v1"
WIFI_SITE_STATS = "wifi.site-stats.v1"
CAMERA_HEARTBEATS = "camera.heartbeats.v1"
CAMERA_HEARTBEAT_BATCHES = "camera.heartbeat-batches.v1"
CAMERA_STATUS = "camera.status.v1"
CAMERA_INCIDENTS = "camera.incidents.v1"
REQUESTS_COMMANDS = "requests.commands.v1"
REQUESTS_EVENTS = "requests.events.v1"
REQUESTS_STATE = "requests.state.v1"
REQUESTS_STATS = "requests.stats.v1"
# Personal data (docs/personal-data.md): the reporters' wrapped data keys, the audit trail.
REQUESTS_DATA_KEYS = "requests.data-keys.v1"
REQUESTS_AUDIT = "requests.audit.v1"

ALL = (WIFI_AP_TELEMETRY, WIFI_CLIENT_SESSIONS, WIFI_AP_TELEMETRY_BATCHES, WIFI_CLIENT_SESSION_BATCHES,
       WIFI_AP_STATUS, WIFI_SITE_STATS, CAMERA_HEARTBEATS, CAMERA_HEARTBEAT_BATCHES,
       CAMERA_STATUS, CAMERA_INCIDENTS, REQUESTS_COMMANDS, REQUESTS_EVENTS, REQUESTS_STATE,
       REQUESTS_STATS, REQUESTS_DATA_KEYS, REQUESTS_AUDIT)
