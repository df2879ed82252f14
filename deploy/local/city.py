"""The whole city on one machine: Kafka, the topics, every service and the simulators.

    python deploy/local/city.py up       # idempotent; waits until the gateway is SERVING
    python deploy/local/city.py down     # stops everything it started, Kafka included
    python deploy/local/city.py status   # what runs, with pids and memory

`up` starts a small supervisor in the background that runs each process of PROCESSES, restarts
one that dies (with backoff) and stops them all on `down`. Logs go to .local/logs/<name>.log.
The environment passes through, so any service setting (tolerances, rates, ports) can be
overridden for a demo or a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / ".local" / "run"
LOG_DIR = ROOT / ".local" / "logs"
SUPERVISOR_PID = RUN_DIR / "supervisor.pid"
# Present when `up` started the broker itself: `down` then stops it too, and leaves alone a
# broker that was already running (`make kafka-up`, a test session, an existing cluster).
KAFKA_OWNED = RUN_DIR / "kafka.started-by-city"
GATEWAY_ADDRESS = os.environ.get("GATEWAY_ADDRESS", "127.0.0.1:50051")
OPEN311_ADDRESS = os.environ.get("OPEN311_ADDRESS", "127.0.0.1:8311")


@dataclass(frozen=True)
class Process:
    name: str
    module: str
    env: dict[str, str] = field(default_factory=dict)
    # Settings for a lively demo, unless the caller's environment sets them.
    defaults: dict[str, str] = field(default_factory=dict)
    # Port of /metrics and /readyz, when the process has one.
    metrics_port: int | None = None
    # Port of the simulator's fault-control endpoint, when it has one.
    control_port: int | None = None
    # Needs the personal-data secrets (the KEK keyring, the subject salt): made once locally.
    personal_data: bool = False


def _port(var: str, default: int) -> int:
    return int(os.environ.get(var, default))


PROCESSES: tuple[Process, ...] = (
    Process("wifi-telemetry", "wifi_telemetry", metrics_port=_port("WIFI_METRICS_PORT", 9101)),
    Process("camera-health", "camera_health", metrics_port=_port("CAMERA_METRICS_PORT", 9102)),
    Process("citizen-requests", "citizen_requests", metrics_port=_port("REQUESTS_METRICS_PORT", 9103)),
    Process("gateway", "gateway", env={"GATEWAY_ADDRESS": GATEWAY_ADDRESS},
            metrics_port=_port("GATEWAY_METRICS_PORT", 9104), personal_data=True),
    Process("open311", "open311", env={"OPEN311_ADDRESS": OPEN311_ADDRESS,
                                       "OPEN311_GATEWAY_ADDRESS": GATEWAY_ADDRESS,
                                       "OPEN311_PUBLIC_URL": f"http://{OPEN311_ADDRESS}"},
            metrics_port=_port("OPEN311_METRICS_PORT", 9105)),
    Process("wifi-simulator", "wifi_telemetry.sim.simulator",
            control_port=_port("WIFI_SIM_CONTROL_PORT", 9111)),
    Process("camera-simulator", "camera_health.sim.simulator",
            control_port=_port("CAMERA_SIM_CONTROL_PORT", 9112)),
    # ~200 requests a day is realistic but shows little in a demo: 30x is one every ~15 s.
    Process("citizens-simulator", "citizen_requests.sim.simulator", defaults={"SIM_RATE_MULTIPLIER": "30"},
            control_port=_port("CITIZENS_SIM_CONTROL_PORT", 9113)),
)


# Opt-in trace backend: SMARTCITY_TRACING=jaeger runs Jaeger (scripts/install_jaeger.sh builds
# it) beside the services and points their OTLP exporters at it; UI and query API on
# http://127.0.0.1:16686 (deploy/monitoring/jaeger_local.py).
if os.environ.get("SMARTCITY_TRACING", "").lower() == "jaeger":
    PROCESSES = (Process("jaeger", "deploy.monitoring.jaeger_local"), *PROCESSES)
    os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")


def say(message: str) -> None:
    print(f"[city] {message}", flush=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def child_env(process: Process) -> dict[str, str]:
    defaults = process.defaults
    if process.personal_data:  # local secrets, unless the caller's environment names others
        from smartcity.personal_data.local import write_local_secrets

        defaults = defaults | write_local_secrets(ROOT / ".local" / "personal-data")
    env = defaults | dict(os.environ) | {"PYTHONUNBUFFERED": "1"} | process.env
    if process.metrics_port is not None:
        env["METRICS_PORT"] = str(process.metrics_port)
    if process.control_port is not None:
        env["SIM_CONTROL_PORT"] = str(process.control_port)
    return env


# ---------------------------------------------------------------- supervisor (background)


class Supervisor:
    """Keeps every process running; restarts a dead one after a growing pause."""

    def __init__(self, processes: tuple[Process, ...]) -> None:
        self.processes = processes
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self.next_start: dict[str, float] = {}
        self.stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for process in self.processes:
            self._start(process)
        while not self.stopping:
            self._watch()
            time.sleep(0.5)
        self._stop_all()

    def _on_signal(self, *_: object) -> None:
        self.stopping = True

    def _start(self, process: Process) -> None:
        log = (LOG_DIR / f"{process.name}.log").open("ab")
        child = subprocess.Popen([sys.executable, "-m", process.module], env=child_env(process), cwd=ROOT,
                                 stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.children[process.name] = child
        (RUN_DIR / f"{process.name}.pid").write_text(str(child.pid))
        print(f"started {process.name} pid {child.pid}", flush=True)

    def _watch(self) -> None:
        now = time.monotonic()
        for process in self.processes:
            child = self.children.get(process.name)
            if child is None or child.poll() is None:
                continue
            due = self.next_start.setdefault(process.name, now + self._backoff(process.name))
            if now >= due:
                print(f"{process.name} exited with {child.returncode}; restarting", flush=True)
                self.restarts[process.name] = self.restarts.get(process.name, 0) + 1
                del self.next_start[process.name]
                self._start(process)

    def _backoff(self, name: str) -> float:
        return float(min(30, 2 ** self.restarts.get(name, 0)))

    def _stop_all(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 25
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for process in self.processes:
            (RUN_DIR / f"{process.name}.pid").unlink(missing_ok=True)
        print("all processes stopped", flush=True)


# ---------------------------------------------------------------- up / down / status


def _kafka(command: str) -> bool:
    """Runs a kafka.sh subcommand; returns whether it succeeded."""
    result = subprocess.run(["bash", str(ROOT / "deploy/local/kafka.sh"), command], check=False)
    return result.returncode == 0


def _kafka_up() -> None:
    already = _kafka_quiet_status()
    if not _kafka("up"):
        raise SystemExit("Kafka did not come up: see .local/logs/kafka.log")
    if not already and _kafka_quiet_status():
        KAFKA_OWNED.touch()


def _kafka_quiet_status() -> bool:
    """Whether a broker that kafka.sh started is running (not an external one)."""
    return _read_pid(ROOT / ".local/kafka/kafka.pid") is not None


def _ensure_topics() -> None:
    from smartcity.kafka import client_security
    from smartcity.settings import LOCAL_BOOTSTRAP, KafkaSecurity
    from smartcity.topics import ensure_topics

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP)
    prefix = os.environ.get("SMARTCITY_TOPIC_PREFIX", "")
    security = client_security(KafkaSecurity.from_env())
    changes = asyncio.run(ensure_topics(bootstrap, prefix, security=security))
    say(f"topics ready on {bootstrap} ({len(changes)} created or changed)")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def gateway_serving(address: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _wait_until_ready(timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = {p.name for p in PROCESSES if p.metrics_port is not None} | {"gateway:grpc"}
    while pending and time.monotonic() < deadline:
        if _read_pid(SUPERVISOR_PID) is None:
            raise SystemExit("the supervisor died: see .local/logs/supervisor.log")
        for process in PROCESSES:
            if process.name in pending and _http_ok(f"http://127.0.0.1:{process.metrics_port}/readyz"):
                pending.discard(process.name)
                say(f"{process.name} ready")
        if "gateway:grpc" in pending and gateway_serving(GATEWAY_ADDRESS):
            pending.discard("gateway:grpc")
            say(f"gateway SERVING on {GATEWAY_ADDRESS}")
        if pending:
            say("waiting for: " + ", ".join(sorted(pending)))
            time.sleep(2)
    if pending:
        raise SystemExit(f"not ready after {timeout_s:.0f}s: {', '.join(sorted(pending))}; "
                         "see .local/logs/<name>.log")


def up(timeout_s: float) -> None:
    started = time.monotonic()
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    say("starting Kafka")
    _kafka_up()
    _ensure_topics()
    if _read_pid(SUPERVISOR_PID) is not None:
        say("the city is already running (make down to stop it)")
    else:
        log = (LOG_DIR / "supervisor.log").open("ab")
        supervisor = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "supervise"],
                                      cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        SUPERVISOR_PID.write_text(str(supervisor.pid))
        say(f"supervisor started (pid {supervisor.pid}): " + ", ".join(p.name for p in PROCESSES))
    _wait_until_ready(timeout_s)
    say(f"the city is up in {time.monotonic() - started:.1f}s")
    _print_summary()


def _print_summary() -> None:
    lines = [
        "",
        f"  gateway (gRPC)     {GATEWAY_ADDRESS}   health, reflection on",
        f"  open311 (HTTP)     http://{OPEN311_ADDRESS}/services.json   Open311 GeoReport v2",
        *[f"  {p.name:<18} http://127.0.0.1:{p.metrics_port}/metrics"
          for p in PROCESSES if p.metrics_port is not None],
        *[f"  {p.name:<18} fault control http://127.0.0.1:{p.control_port}/faults"
          for p in PROCESSES if p.control_port is not None],
        f"  logs               {LOG_DIR.relative_to(ROOT)}/<name>.log",
        "  try                uv run smartcity snapshot      (dev token: see services/gateway/README)",
        "  live view          uv run smartcity top",
        "  a scenario         uv run python deploy/local/scenarios.py list",
        "  stop               make down",
        "",
    ]
    print("\n".join(lines), flush=True)


def down() -> None:
    pid = _read_pid(SUPERVISOR_PID)
    if pid is None:
        say("no supervisor running")
    else:
        say(f"stopping the services (supervisor pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 40
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.3)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    _kill_leftovers()
    SUPERVISOR_PID.unlink(missing_ok=True)
    if KAFKA_OWNED.exists():
        say("stopping Kafka")
        _kafka("down")
        KAFKA_OWNED.unlink(missing_ok=True)
    else:
        say("Kafka was running before 'make up': left running (make kafka-down stops it)")


def _kill_leftovers() -> None:
    """A child that outlived its supervisor (e.g. after a SIGKILL) is stopped by its pid file."""
    for process in PROCESSES:
        pid_file = RUN_DIR / f"{process.name}.pid"
        pid = _read_pid(pid_file)
        if pid is not None:
            say(f"stopping leftover {process.name} (pid {pid})")
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def status() -> int:
    total = 0.0
    running = 0
    rows = [("supervisor", _read_pid(SUPERVISOR_PID))]
    rows += [(p.name, _read_pid(RUN_DIR / f"{p.name}.pid")) for p in PROCESSES]
    rows.append(("kafka", _read_pid(ROOT / ".local/kafka/kafka.pid")))
    for name, pid in rows:
        rss = rss_mib(pid) if pid else 0.0
        total += rss
        running += pid is not None
        print(f"  {name:<20} {'running' if pid else 'stopped':<8} pid {pid or '-':<8} {rss:7.1f} MiB")
    print(f"  {'total':<20} {running}/{len(rows)} running {total:16.1f} MiB")
    return 0 if running == len(rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="city", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "supervise"])
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("CITY_UP_TIMEOUT", "180")))
    args = parser.parse_args(argv)
    if args.command == "up":
        up(args.timeout)
    elif args.command == "down":
        down()
    elif args.command == "status":
        return status()
    else:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        Supervisor(PROCESSES).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
