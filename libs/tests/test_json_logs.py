"""JSON log lines: one object per line, timestamps in UTC whatever the process's time zone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest

# Run in a child so that TZ and time.tzset() change nothing in the test process.
_CHILD = textwrap.dedent(
    """
    import logging, os, sys, time
    os.environ["TZ"] = sys.argv[1]
    time.tzset()
    from smartcity.observability import JsonFormatter
    record = logging.LogRecord("t", logging.INFO, "child.py", 1, "hello", None, None)
    record.created, record.msecs = 1780000000.25, 250.0   # 2026-05-28T20:26:40.250Z
    print(time.strftime("%z"))
    print(JsonFormatter("svc").format(record))
    """
)


@pytest.mark.parametrize("zone", ["Asia/Jakarta", "America/Los_Angeles", "UTC"])
def test_timestamps_are_utc_with_z_under_any_tz(zone: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, zone], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    offset, line = out[0], json.loads(out[1])
    if zone != "UTC":
        assert offset != "+0000", f"the child did not switch to {zone}"
    assert line["ts"] == "2026-05-28T20:26:40.250Z"
    assert datetime.fromisoformat(line["ts"]) == datetime.fromtimestamp(1780000000.25, UTC)
