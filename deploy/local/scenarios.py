"""Scenarios for demos and tests, injected through the simulators' fault-control endpoints.

    python deploy/local/scenarios.py list
    python deploy/local/scenarios.py run camera-dark          # inject
    python deploy/local/scenarios.py recover camera-dark      # undo

The simulators must be running (`make up`); their control ports are those of deploy/local/city.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from city import PROCESSES  # a sibling script, not a package

from smartcity.simcontrol import send_fault

Step = tuple[str, dict[str, Any]]  # (simulator process name, fault command)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    inject: tuple[Step, ...]
    recover: tuple[Step, ...] = ()


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "camera-dark",
        "Alun-Alun camera 2 goes dark: its heartbeats stop, it goes CRITICAL and an incident opens",
        inject=(("camera-simulator", {"fault": "offline", "target": "cam-alun-alun-2"}),),
        recover=(("camera-simulator", {"fault": "clear", "target": "cam-alun-alun-2"}),),
    ),
    Scenario(
        "camera-covered",
        "Someone covers the Simpang Empat Bancar camera: tamper flag, PROBLEM",
        inject=(("camera-simulator", {"fault": "tamper", "target": "cam-simpang-bancar-1",
                                      "flags": ["covered"]}),),
        recover=(("camera-simulator", {"fault": "clear", "target": "cam-simpang-bancar-1"}),),
    ),
    Scenario(
        "pendopo-ap-reboot",
        "Pendopo AP 1 reboots: it goes silent for 30 s, then its counters and uptime restart",
        inject=(("wifi-simulator", {"fault": "reboot", "target": "ap-pendopo-01", "duration_s": 30}),),
        recover=(("wifi-simulator", {"fault": "clear", "target": "ap-pendopo-01"}),),
    ),
    Scenario(
        "alun-alun-wifi-outage",
        "The Alun-Alun access points lose power: the site's APs go offline together",
        inject=(("wifi-simulator", {"fault": "offline", "target": "alun-alun"}),),
        recover=(("wifi-simulator", {"fault": "clear", "target": "alun-alun"}),),
    ),
    Scenario(
        "flood-emergencies",
        "A burst of emergency reports around Alun-Alun after a flood",
        inject=(("citizens-simulator", {"fault": "emergency_burst", "count": 20, "area": "alun-alun"}),),
    ),
)


def scenario(name: str) -> Scenario:
    for candidate in SCENARIOS:
        if candidate.name == name:
            return candidate
    known = ", ".join(s.name for s in SCENARIOS)
    raise KeyError(f"unknown scenario {name!r}; known: {known}")


def control_port(process_name: str) -> int:
    for process in PROCESSES:
        if process.name == process_name and process.control_port is not None:
            return process.control_port
    raise KeyError(f"{process_name} has no control endpoint")


def apply(steps: tuple[Step, ...]) -> list[dict[str, Any]]:
    return [send_fault(control_port(process), command) for process, command in steps]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scenarios", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["list", "run", "recover"])
    parser.add_argument("name", nargs="?")
    args = parser.parse_args(argv)
    if args.command == "list":
        for item in SCENARIOS:
            print(f"  {item.name:<24} {item.description}")
        return 0
    if not args.name:
        parser.error("name a scenario (see 'list')")
    chosen = scenario(args.name)
    steps = chosen.inject if args.command == "run" else chosen.recover
    for reply in apply(steps):
        print(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
