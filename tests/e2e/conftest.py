"""On a failed e2e test, the report carries what the city's processes warned about.

The city runs in child processes whose logs (.local/logs/<name>.log) a CI report does not show;
without them a timeout ("waited 60 s for CRITICAL") says nothing about why.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest
from pluggy import Result

LOGS = Path(__file__).resolve().parents[2] / ".local" / "logs"
SHOWN_PER_LOG = 12
# The logs are appended to by every `make up`: only what this test session wrote counts.
_SIZE_AT_START = {log.name: log.stat().st_size for log in LOGS.glob("*.log")} if LOGS.is_dir() else {}


def _warnings_and_errors(log: Path) -> list[str]:
    with log.open("rb") as file:
        file.seek(_SIZE_AT_START.get(log.name, 0))
        lines = file.read().decode(errors="replace").splitlines()[-5000:]
    return [line[:400] for line in lines
            if '"WARNING"' in line or '"ERROR"' in line or '"CRITICAL"' in line
            or " WARNING " in line or " ERROR " in line or "Traceback" in line][-SHOWN_PER_LOG:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None],
                              ) -> Generator[None, Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed or not LOGS.is_dir():
        return
    for log in sorted(LOGS.glob("*.log")):
        if log.name == "kafka.log":
            continue
        found = _warnings_and_errors(log)
        if found:
            report.sections.append((f"{log.stem}: last warnings and errors", "\n".join(found)))
