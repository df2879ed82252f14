"""Fixtures of the deployment checks: the service images run as containers, and waiting for a
service (process or container) to be ready.

`run_image` starts an image `make images` built (scripts/build_images.sh: buildah, docker or
podman, whichever it chose) on the host network, with the given environment, and stops it
after the test. A missing engine or image FAILS the test with the command that builds it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from smartcity.testing import ready

REPO = Path(__file__).resolve().parents[2]
IMAGE_REPO = os.environ.get("IMAGE_REPO", "smartcity")
IMAGE_TAG = os.environ.get("IMAGE_TAG", "0.1.0")
# Set in each container's environment, to find its processes from the host.
CONTAINER_MARKER = "SMARTCITY_TEST_CONTAINER"
BUILD_HINT = "build it with `make images` (or `make ops-live`)"


def engine() -> str:
    """The container engine scripts/build_images.sh uses (CONTAINER_ENGINE, else its choice)."""
    done = subprocess.run(["bash", "scripts/build_images.sh", "--print-engine"], cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


def engine_env(name: str) -> dict[str, str]:
    """The environment the engine runs with: the project's container config for buildah/podman."""
    if Path(name).name not in ("buildah", "podman"):
        return dict(os.environ)
    done = subprocess.run(["bash", "-c", "source scripts/container_env.sh && env -0"], cwd=REPO,
                          capture_output=True, timeout=30, check=True)
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


@dataclass
class Container:
    """One image running as a container: its engine process, and the service inside."""

    service: str
    image: str
    engine: str
    env: dict[str, str]
    log_path: Path
    name: str
    _proc: subprocess.Popen[bytes] | None = None
    _cleanup: list[list[str]] = field(default_factory=list)

    def start(self, service_env: dict[str, str], volumes: dict[Path, str] | None = None) -> Container:
        exe = Path(self.engine).name
        service_env = service_env | {CONTAINER_MARKER: self.name}
        env_args = [arg for key, value in service_env.items() for arg in ("--env", f"{key}={value}")]
        env_args += [arg for host, inside in (volumes or {}).items()
                     for arg in ("--volume", f"{host}:{inside}:ro")]
        if exe == "buildah":
            policy = ["--signature-policy", self.env["CONTAINERS_POLICY"]]
            subprocess.run([self.engine, "from", "--pull-never", *policy, "--name", self.name, self.image],
                           env=self.env, check=True, capture_output=True, timeout=300)
            self._cleanup.append([self.engine, "rm", self.name])
            # buildah run does not apply the ENTRYPOINT: run the same command it holds; the
            # image's USER, ENV and WORKDIR apply.
            argv = [self.engine, "run", "--network", "host", *env_args, self.name, "--",
                    "/bin/sh", "-c", 'exec "$SMARTCITY_SERVICE"']
        else:
            argv = [self.engine, "run", "--rm", "--network", "host", "--name", self.name, *env_args,
                    self.image]
            self._cleanup.append([self.engine, "rm", "-f", self.name])
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def service_pids(self) -> list[int]:
        """The processes of this container: they carry its name in their environment."""
        marker = f"{CONTAINER_MARKER}={self.name}".encode()
        pids = []
        for proc_dir in Path("/proc").glob("[0-9]*"):
            try:
                environ = (proc_dir / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker in environ:
                pids.append(int(proc_dir.name))
        return pids

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> None:
        # SIGTERM to the service itself (PID 1 of the container), as the kubelet sends it.
        for pid in self.service_pids():
            os.kill(pid, signal.SIGTERM)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                for pid in self.service_pids():
                    os.kill(pid, signal.SIGKILL)
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=10)
        for argv in self._cleanup:
            subprocess.run(argv, env=self.env, capture_output=True, timeout=120, check=False)


RunImage = Callable[..., Container]


@pytest.fixture
def run_image(tmp_path: Path) -> Iterator[RunImage]:
    """run_image(service, volumes={host: container path}, **env) -> a started Container of
    smartcity/<service>:<tag> (volumes mounted read-only)."""
    name = engine()
    env = engine_env(name)
    started: list[Container] = []

    def start(service: str, volumes: dict[Path, str] | None = None, **service_env: str) -> Container:
        image = f"{IMAGE_REPO}/{service}:{IMAGE_TAG}"
        registry = image.split("/", maxsplit=1)[0]
        if Path(name).name in ("buildah", "podman") and "/" in image and "." not in registry:
            image = f"localhost/{image}"  # where they keep local images of unqualified names
        inspect = ["inspect", "--type", "image"] if Path(name).name == "buildah" else ["image", "inspect"]
        present = subprocess.run([name, *inspect, image], env=env, capture_output=True, timeout=60,
                                 check=False)
        if present.returncode != 0:
            pytest.fail(f"image {image} not built ({name}): {BUILD_HINT}", pytrace=False)
        container = Container(service, image, name, env, tmp_path / f"{service}.log",
                              f"smartcity-test-{service}-{os.getpid()}-{int(time.time() * 1000) % 100000}")
        started.append(container.start(service_env, volumes))
        return container

    yield start
    for container in started:
        container.stop()


# ------------------------------------------------------------------------ waiting for readiness

class Runs(Protocol):
    """A started service: a ServiceProcess or a Container."""

    @property
    def running(self) -> bool: ...

    def log_tail(self, lines: int = 40) -> str: ...


Check = Callable[[], Awaitable[bool]]
READY_TIMEOUT_S = 120.0


async def wait_until(service: Runs, check: Check, what: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Polls `check` until it holds; fails with the service's log when it exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert service.running, f"{what}: exited:\n{service.log_tail()}"
        if await check():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout_s:.0f}s:\n{service.log_tail()}")


def http_ready(port: int) -> Check:
    """/readyz of a service's metrics port answers 200."""
    return lambda: asyncio.to_thread(ready, port)


def grpc_serving(address: str) -> Check:
    """The standard gRPC health service answers SERVING."""
    async def probe() -> bool:
        async with grpc.aio.insecure_channel(address) as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                        timeout=1)
            except grpc.aio.AioRpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    return probe


@dataclass(frozen=True)
class Readiness:
    """The waiting helpers, as one fixture: wait_until, http_ready, grpc_serving."""

    wait_until: Callable[..., Awaitable[None]] = wait_until
    http_ready: Callable[[int], Check] = http_ready
    grpc_serving: Callable[[str], Check] = grpc_serving


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()
