"""Real device servers and clients for the edge collectors' tests and benchmarks.

Everything here runs a program nobody in this project wrote, on 127.0.0.1 and free ports:
  ThrowawayKafka   a second plaintext Kafka broker (KRaft) that can be stopped and started
                   again on the same data, for outages (the shared broker is never touched)
  radclient        Debian's freeradius-utils client sending real Accounting-Requests
  SnmpAgent        Debian's net-snmp `snmpd` with its own config, community and state dir
  RtspServer       GStreamer's gst-rtsp-server (system python3 with python3-gst) streaming
                   videotestsrc patterns: normal, black, blurred, frozen, moved, hang
The tools come from scripts/install_edge_tools.sh (called by `make test`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path

from smartcity.testing import free_port


def free_udp_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def send_udp(port: int, payload: bytes, wait_reply_s: float = 0.0) -> bytes | None:
    """Sends one datagram to 127.0.0.1:port; the reply when one comes within `wait_reply_s`."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        sock.sendto(payload, ("127.0.0.1", port))
        if wait_reply_s <= 0:
            return None
        sock.settimeout(wait_reply_s)
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def wait_http_ok(url: str, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def http_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def _stop_group(proc: subprocess.Popen[bytes] | None, timeout_s: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# ---------------------------------------------------------------- a restartable second broker

# ---------------------------------------------------------------- RADIUS: Debian's radclient

def radclient(port: int, secret: str, attributes: Mapping[str, str | int], *, attempts: int = 1,
              timeout_s: float = 2.0, count: int = 1) -> subprocess.CompletedProcess[str]:
    """Sends one Accounting-Request with radclient, `attempts` times at most (its -r, at least 1)
    `timeout_s` apart; returncode 0 when it got its response."""
    if shutil.which("radclient") is None:
        raise RuntimeError("radclient is missing: run scripts/install_edge_tools.sh")
    def pair(name: str, value: str | int) -> str:  # strings quoted, numbers and 0x octets bare
        bare = not isinstance(value, str) or value.startswith("0x")
        return f"{name} = {value}" if bare else f'{name} = "{value}"'

    line = ", ".join(pair(name, value) for name, value in attributes.items())
    argv = ["radclient", "-x", "-r", str(max(1, attempts)), "-t", f"{timeout_s:g}", "-c", str(count),
            f"127.0.0.1:{port}", "acct", secret]
    return subprocess.run(argv, input=line + "\n", capture_output=True, text=True, check=False,
                          timeout=attempts * timeout_s * count + 15)


# ---------------------------------------------------------------- SNMP: Debian's net-snmp agent

class SnmpAgent:
    """`snmpd` in the foreground on 127.0.0.1:<free port>, its own config and persistent dir.

    `extend clients /bin/cat <file>` publishes the client count a test writes (the net-snmp /
    OpenWrt way of exposing a value: NET-SNMP-EXTEND-MIB nsExtendOutput1Line."clients").
    """

    def __init__(self, workdir: Path, community: str = "pbg-test") -> None:
        self.workdir, self.community = workdir, community
        self.port = free_udp_port()
        self.clients_file = workdir / "clients"
        self.clients_file.write_text("0\n")
        self.log_path = workdir / "snmpd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> SnmpAgent:
        binary = shutil.which("snmpd") or "/usr/sbin/snmpd"
        if not Path(binary).exists():
            raise RuntimeError("snmpd is missing: run scripts/install_edge_tools.sh")
        conf = self.workdir / "snmpd.conf"
        conf.write_text(f"agentAddress udp:127.0.0.1:{self.port}\n"
                        f"rocommunity {self.community} 127.0.0.1\n"
                        f"extend clients /bin/cat {self.clients_file}\n"
                        "sysLocation Purbalingga test bench\nsysContact ops@example.invalid\n")
        state = self.workdir / "state"
        state.mkdir(exist_ok=True)
        env = os.environ | {"SNMP_PERSISTENT_DIR": str(state), "MIBS": ""}
        with self.log_path.open("ab") as log:
            argv = [binary, "-f", "-Lo", "-C", "-c", str(conf), "-p", str(self.workdir / "snmpd.pid")]
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"snmpd did not start:\n{tail}")
            time.sleep(0.2)
        return self

    def answers(self) -> bool:
        result = subprocess.run(["snmpget", "-v2c", "-c", self.community, "-t", "0.5", "-r", "0", "-On",
                                 f"udp:127.0.0.1:{self.port}", "1.3.6.1.2.1.1.3.0"],
                                capture_output=True, text=True, timeout=10, check=False)
        return result.returncode == 0

    def stop(self) -> None:
        _stop_group(self._proc)


# ---------------------------------------------------------------- RTSP: GStreamer's server

GST_RTSP_SCRIPT = Path(__file__).with_name("gst_rtsp_server.py")


class RtspServer:
    """gst-rtsp-server (system /usr/bin/python3, python3-gst) serving mounts of test patterns.

    `mounts`: path → pattern among gst_rtsp_server.PATTERNS. `user`/`password` turn on
    authentication (`auth`: "basic" or "digest"). The server prints READY once it listens.
    """

    def __init__(self, workdir: Path, mounts: Mapping[str, str], *, user: str = "", password: str = "",
                 auth: str = "basic", size: str = "320x240", fps: int = 10) -> None:
        self.workdir, self.size, self.fps = workdir, size, fps
        self.port = free_port()
        self.mounts, self.user, self.password, self.auth = dict(mounts), user, password, auth
        self.log_path = workdir / f"rtsp-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, mount: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{mount.strip('/')}"

    def start(self, timeout_s: float = 20.0) -> RtspServer:
        argv: Sequence[str] = ["/usr/bin/python3", str(GST_RTSP_SCRIPT), "--port", str(self.port),
                               *[f"--mount={path}={pattern}" for path, pattern in self.mounts.items()]]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        env |= {"RTSP_TEST_SIZE": self.size, "RTSP_TEST_FPS": str(self.fps)}
        if self.user:
            env |= {"RTSP_TEST_USER": self.user, "RTSP_TEST_PASSWORD": self.password,
                    "RTSP_TEST_AUTH": self.auth}
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while "READY" not in self.log_path.read_text(errors="replace"):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gst-rtsp-server did not start:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        _stop_group(self._proc, timeout_s=5)
