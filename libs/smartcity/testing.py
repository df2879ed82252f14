"""Pytest plugin of the platform's integration tests (registered by the root conftest.py).

Fixtures give every test the real local broker and its own topic prefix, so tests never see
each other's messages and can run against one broker. Helpers produce and consume for real and
run a service from its real entry point as a child process.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import IO, Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from smartcity.settings import LOCAL_BOOTSTRAP, KafkaSecurity
from smartcity.topics import delete_topics, ensure_topics

REPO_ROOT = Path(__file__).resolve().parents[2]
Headers = list[tuple[str, bytes]]


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(port: int) -> bool:
    """Whether a service's /readyz on 127.0.0.1:port answers 200 (blocking: use a thread)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _reachable(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker of the test session: KAFKA_BOOTSTRAP_SERVERS, else the local one (started)."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP)
    if not _reachable(bootstrap):
        if bootstrap != LOCAL_BOOTSTRAP:
            pytest.fail(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap} is not reachable")
        subprocess.run(["bash", str(REPO_ROOT / "deploy/local/kafka.sh"), "up"], check=True)
    return bootstrap


@pytest_asyncio.fixture
async def topic_prefix(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A fresh prefix with every catalogue topic created under it; deleted after the test.

    Deleting keeps a long test session from piling thousands of partitions on one broker.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix)
    yield prefix
    await delete_topics(kafka_bootstrap, prefix)


@pytest_asyncio.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    prod = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await prod.start()
    try:
        yield prod
    finally:
        await prod.stop()


async def consume(bootstrap: str, topic: str, *, until: Callable[[list[ConsumerRecord[Any, Any]]], bool],
                  timeout_s: float = 30.0, isolation_level: str = "read_uncommitted",
                  security: Mapping[str, Any] | None = None) -> list[ConsumerRecord[Any, Any]]:
    """Reads `topic` from the beginning (no group) until `until(records)` holds or time runs out.

    Returns what was read either way; the caller asserts on it, so a timeout is a clear failure.
    `security`: smartcity.kafka.client_security(...) for a secured broker (none = plaintext).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **dict(security or {}), enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None,
                                isolation_level=isolation_level)
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        partitions: set[int] = set()
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await asyncio.sleep(0.2)
        if not partitions:
            return records  # the topic never appeared: the caller's assertion will say so
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        while not until(records) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def consume_all(bootstrap: str, topic: str, settle_s: float = 2.0, timeout_s: float = 30.0,
                      isolation_level: str = "read_uncommitted", *,
                      security: Mapping[str, Any] | None = None) -> list[ConsumerRecord[Any, Any]]:
    """Everything on a topic: reads until nothing new arrived for `settle_s`."""
    state = {"count": -1, "since": time.monotonic()}

    def settled(records: list[ConsumerRecord[Any, Any]]) -> bool:
        if len(records) != state["count"]:
            state["count"], state["since"] = len(records), time.monotonic()
        return time.monotonic() - state["since"] >= settle_s

    return await consume(bootstrap, topic, until=settled, timeout_s=timeout_s,
                         isolation_level=isolation_level, security=security)


class ServiceProcess:
    """A service started from its real entry point as a child process, logs to a file."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ServiceProcess:
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(self.argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                      cwd=REPO_ROOT, start_new_session=True)
        return self

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The process id (benchmarks read its CPU and memory from /proc)."""
        if self._proc is None:
            raise RuntimeError(f"{self.argv[0]} was not started")
        return self._proc.pid

    def wait(self, timeout_s: float) -> int | None:
        """Waits for the process to exit by itself; its return code, None if still running."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, nothing flushed or committed on the way out."""
        if self._proc is not None and self.running:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        if self._proc is None:
            return None
        if self.running:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
        return self._proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def run_service(kafka_bootstrap: str, topic_prefix: str,
                tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Starts `python -m <module>` with the test's broker, prefix and extra env; stops them after.

    Depends on `topic_prefix` so that its processes stop before the prefix's topics go.
    """
    started: list[ServiceProcess] = []

    def start(module: str, prefix: str, *args: str, **env: str) -> ServiceProcess:
        full_env = os.environ | {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "SMARTCITY_TOPIC_PREFIX": prefix,
            "LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        } | env
        name = module.replace(".", "_")
        proc = ServiceProcess([sys.executable, "-m", module, *args], full_env,
                              tmp_path / f"{name}-{len(started)}.log").start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


# ---------------------------------------------------------------- a secured broker of its own

JARS_DIR = REPO_ROOT / "deploy/local/jars"
SCRAM_MECHANISM = "SCRAM-SHA-512"


def _broker_java(workdir: Path) -> list[str]:
    """The JVM command line of a test broker (small heap, its log4j.properties in workdir)."""
    java_home = os.environ.get("JAVA_HOME")
    return [os.path.join(java_home, "bin", "java") if java_home else "java",
            "-Xms128m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            f"-Dlog4j.configuration=file:{workdir / 'log4j.properties'}", "-cp", f"{JARS_DIR}/*"]


def _cluster_id() -> str:
    """A random KRaft cluster id that does not start with "-" (kafka-storage would take it for
    an option and refuse to format: one id in 64), as Kafka's own random ids never do."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _stop_broker(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the broker's process group, SIGKILL if it lingers."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class SecuredKafka:
    """A second, throw-away Kafka 3.9 broker (KRaft, combined roles) with authentication on.

    Listeners, all on free 127.0.0.1 ports:
      SASL_PLAINTEXT  SCRAM-SHA-512           -> `sasl_bootstrap`
      SASL_SSL        SCRAM-SHA-512 over TLS  -> `sasl_ssl_bootstrap`, the broker's certificate
                                                 signed by a CA made here (`cafile`)
      a PLAINTEXT one for the broker's own inter-broker traffic and the KRaft controller.
    One SCRAM user, `username`/`password`, is written into the metadata at format time
    (kafka-storage format --add-scram). No authorizer: authentication is what is under test.
    """

    def __init__(self, workdir: Path, username: str = "svc-test", password: str = "s3cret-Pw") -> None:
        self.workdir, self.username, self.password = workdir, username, password
        self.ports = {name: free_port() for name in ("internal", "sasl", "sasl_ssl", "controller")}
        self.sasl_bootstrap = f"127.0.0.1:{self.ports['sasl']}"
        self.sasl_ssl_bootstrap = f"127.0.0.1:{self.ports['sasl_ssl']}"
        self.cafile = workdir / "ca.crt"
        self.log_path = workdir / "broker.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def security(self, protocol: str = "SASL_PLAINTEXT", password: str | None = None) -> KafkaSecurity:
        """The KafkaSecurity a client of this broker configures (another password to fail)."""
        return KafkaSecurity(protocol=protocol, sasl_mechanism=SCRAM_MECHANISM, sasl_username=self.username,
                             sasl_password=self.password if password is None else password,
                             ssl_cafile=str(self.cafile) if protocol == "SASL_SSL" else "")

    def bootstrap(self, protocol: str = "SASL_PLAINTEXT") -> str:
        return self.sasl_ssl_bootstrap if protocol == "SASL_SSL" else self.sasl_bootstrap

    def env(self, protocol: str = "SASL_PLAINTEXT") -> dict[str, str]:
        """The environment a service process needs to reach this broker (password by file)."""
        password_file = self.workdir / "password"
        password_file.write_text(self.password + "\n")
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap(protocol), "KAFKA_SECURITY_PROTOCOL": protocol,
               "KAFKA_SASL_MECHANISM": SCRAM_MECHANISM, "KAFKA_SASL_USERNAME": self.username,
               "KAFKA_SASL_PASSWORD_FILE": str(password_file)}
        if protocol == "SASL_SSL":
            env["KAFKA_SSL_CAFILE"] = str(self.cafile)
        return env

    def start(self, timeout_s: float = 45.0) -> SecuredKafka:
        if not (JARS_DIR / ".complete").exists():
            subprocess.run(["bash", str(REPO_ROOT / "deploy/local/kafka.sh"), "fetch"], check=True)
        self._make_certificates()
        props = self._write_configs()
        java = _broker_java(self.workdir)
        cluster_id = _cluster_id()
        with self.log_path.open("ab") as log:
            subprocess.run([*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props),
                            "--add-scram",
                            f"{SCRAM_MECHANISM}=[name={self.username},password={self.password}]"],
                           check=True, stdout=log, stderr=subprocess.STDOUT, timeout=60)
            self._proc = subprocess.Popen([*java, "kafka.Kafka", str(props)], stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not _reachable(self.sasl_bootstrap) or not _reachable(self.sasl_ssl_bootstrap):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
                raise RuntimeError(f"the secured test broker did not start:\n{tail}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        _stop_broker(self._proc)

    def _make_certificates(self) -> None:
        """A CA and a broker certificate for 127.0.0.1 it signs (EC keys: quick to make)."""
        d = self.workdir

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d, timeout=30)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                "-subj", "/CN=smartcity-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        openssl("req", *ec, "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=127.0.0.1")
        (d / "broker.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                      "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                      "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
                                      "authorityKeyIdentifier=keyid\n")
        openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "broker.crt", "-days", "2", "-extfile", "broker.ext")
        # Kafka reads a PEM keystore: the (PKCS#8, unencrypted) key and the certificate chain.
        (d / "broker.pem").write_text((d / "broker.key").read_text() + (d / "broker.crt").read_text())

    def _write_configs(self) -> Path:
        p, d = self.ports, self.workdir
        jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        props = d / "server.properties"
        props.write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{p['controller']}",
            f"listeners=INTERNAL://127.0.0.1:{p['internal']},SASL://127.0.0.1:{p['sasl']},"
            f"SASLSSL://127.0.0.1:{p['sasl_ssl']},CONTROLLER://127.0.0.1:{p['controller']}",
            f"advertised.listeners=INTERNAL://127.0.0.1:{p['internal']},SASL://127.0.0.1:{p['sasl']},"
            f"SASLSSL://127.0.0.1:{p['sasl_ssl']}",
            "listener.security.protocol.map=INTERNAL:PLAINTEXT,SASL:SASL_PLAINTEXT,SASLSSL:SASL_SSL,"
            "CONTROLLER:PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=INTERNAL",
            f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            f"listener.name.sasl.scram-sha-512.sasl.jaas.config={jaas}",
            f"listener.name.saslssl.scram-sha-512.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={d / 'broker.pem'}",
            f"log.dirs={d / 'data'}",
            "num.partitions=1",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=3",
            "group.initial.rebalance.delay.ms=0",
            "num.network.threads=2",
            "num.io.threads=2",
            "",
        ]))
        (d / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaServer=INFO\n"
            "log4j.logger.org.apache.kafka.common.security=INFO\n")
        return props


@pytest.fixture(scope="module")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    """A broker that requires SCRAM-SHA-512 (plain TCP and TLS listeners); stopped after the module."""
    broker = SecuredKafka(tmp_path_factory.mktemp("secured-kafka")).start()
    try:
        yield broker
    finally:
        broker.stop()


class ThrowawayKafka:
    """A private plaintext Kafka 3.9 broker (KRaft, combined roles) on free 127.0.0.1 ports,
    for tests that need broker settings the shared one must not have (fast log cleaning,
    tiny segments) or that read the broker's segment files (`data_dir`). Its data survives
    `stop()`/`start()` (a broker outage in the middle of a test)."""

    def __init__(self, workdir: Path, **properties: str) -> None:
        self.workdir, self.properties = workdir, properties
        self.ports = {name: free_port() for name in ("client", "controller")}
        self.bootstrap = f"127.0.0.1:{self.ports['client']}"
        self.data_dir = workdir / "data"
        self.log_path = workdir / "broker.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._formatted = False

    def start(self, timeout_s: float = 60.0) -> ThrowawayKafka:
        if not (JARS_DIR / ".complete").exists():
            subprocess.run(["bash", str(REPO_ROOT / "deploy/local/kafka.sh"), "fetch"], check=True)
        p = self.ports
        props = self.workdir / "server.properties"
        lines = {
            "process.roles": "broker,controller", "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{p['controller']}",
            "listeners": f"PLAINTEXT://127.0.0.1:{p['client']},CONTROLLER://127.0.0.1:{p['controller']}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p['client']}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER", "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir), "num.partitions": "1", "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1", "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "3", "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2", "num.io.threads": "2",
        } | self.properties
        props.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        (self.workdir / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n")
        java = _broker_java(self.workdir)
        with self.log_path.open("ab") as log:
            if not self._formatted:  # once: a restart keeps the data
                cluster_id = _cluster_id()
                subprocess.run([*java, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                                "-c", str(props)],
                               check=True, stdout=log, stderr=subprocess.STDOUT, timeout=60)
                self._formatted = True
            self._proc = subprocess.Popen([*java, "kafka.Kafka", str(props)], stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not _reachable(self.bootstrap):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
                raise RuntimeError(f"the throw-away test broker did not start:\n{tail}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        _stop_broker(self._proc)

    def segment_bytes(self, topic: str) -> bytes:
        """Everything on disk for a topic's partitions (segments, indexes, cleaner leftovers)."""
        return b"".join(path.read_bytes() for folder in sorted(self.data_dir.glob(f"{topic}-*"))
                        for path in sorted(folder.iterdir()) if path.is_file())
