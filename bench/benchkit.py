"""What the benchmarks share: the broker's security from the environment, feeding topics as fast
as an idempotent producer allows, the two ceilings every worker benchmark measures on its own
topic in the same run (a raw aiokafka consumer decoding each value; a bare Faust agent doing
the same), the closing JSON line, and py-spy's summary of where a worker's time went."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from smartcity.kafka import client_security
from smartcity.settings import KafkaSecurity

# The broker's security from KAFKA_SECURITY_* like the services (plaintext when unset).
SECURITY = client_security(KafkaSecurity.from_env())

Record = tuple[str, bytes, bytes]  # (topic, key, value)


async def produce_all(bootstrap: str, records: Iterable[Record], *, linger_ms: int = 5,
                      max_batch_size: int = 16384) -> float:
    """Sends every record with acks=all and idempotence, waits for every ack; returns seconds."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **SECURITY, acks="all", enable_idempotence=True,
                                linger_ms=linger_ms, max_batch_size=max_batch_size)
    await producer.start()
    started = time.perf_counter()
    try:
        pending = [await producer.send(topic, value, key=key) for topic, key, value in records]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_rate(bootstrap: str, decoders: Mapping[str, Callable[[bytes], object]], count: int) -> float:
    """The raw ceiling: messages/s of one aiokafka consumer reading `count` messages of the
    topics in `decoders` from the start (no group), decoding each value with its topic's."""
    topics = list(decoders)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **SECURITY, group_id=None,
                                enable_auto_commit=False, max_poll_records=10_000,
                                fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topics)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        taken, started = 0, time.perf_counter()
        while taken < count:
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, records in batches.items():
                decode = decoders[tp.topic]
                for record in records:
                    decode(record.value)
                taken += sum(len(r) for r in batches.values())
        return taken / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def partitions_of(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of the topics, once the consumer's metadata knows them all."""
    for _ in range(100):
        await consumer._client.force_metadata_update()
        known = {t: consumer.partitions_for_topic(t) for t in topics}
        if all(known.values()):
            return [TopicPartition(t, p) for t, ps in known.items() for p in sorted(ps or ())]
        await asyncio.sleep(0.1)
    raise SystemExit(f"topics not found: {[t for t, ps in known.items() if not ps]}")


def service_env(bootstrap: str, prefix: str, *, metrics_port: int = 0, **extra: str) -> dict[str, str]:
    """The environment of a service a benchmark starts: this one's, on `bootstrap` under topic
    `prefix`, its metrics on `metrics_port` (0: any free port), never a static group member
    (a KAFKA_GROUP_INSTANCE_ID left in the caller's environment would be two processes' id),
    plus `extra` (e.g. LOG_LEVEL)."""
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_GROUP_INSTANCE_ID"}
    return env | {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SMARTCITY_TOPIC_PREFIX": prefix,
                  "METRICS_PORT": str(metrics_port)} | extra


def bare_faust_rate(bootstrap: str, topics: Sequence[str], count: int, protos: Sequence[str]) -> float:
    """`bare_faust_figures`' messages/s."""
    return bare_faust_figures(bootstrap, topics, count, protos)[0]


def bare_faust_figures(bootstrap: str, topics: Sequence[str], count: int,
                       protos: Sequence[str]) -> tuple[float, float]:
    """The bare-Faust ceiling: (messages/s, messages per CPU second) of one Faust agent decoding
    `count` messages of `topics` (bench/bare_faust.py in its own process), from its first message
    to the last. `protos`: "module:MessageClass" of each topic's values. On a shared machine the
    second is the steadier figure: it does not count the time other processes had the CPU."""
    env = service_env(bootstrap, "")
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("bare_faust.py")),
                           "--topics", ",".join(topics), "--count", str(count), "--protos", ",".join(protos)],
                          env=env, capture_output=True, timeout=600, check=False)
    # Faust's terminal handling may put escape codes before the line: take the JSON object.
    lines = [line[line.index("{"):] for line in done.stdout.decode().splitlines() if "{" in line]
    if not lines:
        raise SystemExit(f"bare Faust ceiling failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    figures = json.loads(lines[-1])
    messages = float(figures["messages"])
    cpu = max(float(figures["cpu_seconds"]), 1e-9)
    return messages / max(float(figures["seconds"]), 1e-9), messages / cpu


def message_class(path: str) -> Any:
    """The protobuf class named "module:Class"."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def print_figures(figures: Mapping[str, object]) -> None:
    """The benchmark's last line: its figures as one JSON object (None fields left out)."""
    print(json.dumps({k: (round(v) if isinstance(v, float) and k.endswith("_per_s") else v)
                      for k, v in figures.items() if v is not None}))


def py_spy() -> str:
    """The py-spy of the project's environment (a dev dependency), else one on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    executable = str(beside) if beside.exists() else shutil.which("py-spy")
    if executable is None:
        raise SystemExit("profiling needs py-spy: `make install` (a dev dependency) or on PATH")
    return executable


class Profiler:
    """py-spy sampling a worker process while it works (when `py-spy` is on PATH): where a
    benchmark's time goes, summarised by the functions that were running (self time) and by
    the functions on the stack (total time). Sampling needs ptrace rights over the worker."""

    def __init__(self, pid: int, output: Path, rate: int = 250) -> None:
        self.output = output
        executable = py_spy()
        self.process = subprocess.Popen([executable, "record", "--pid", str(pid), "--rate", str(rate),
                                         "--format", "raw", "--output", str(output), "--nonblocking"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self, top: int = 25) -> str:
        """Stops sampling; the summary of what was sampled."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.output.exists():
            error = self.process.stderr.read().decode() if self.process.stderr else ""
            return f"py-spy wrote nothing: {error}"
        return summarise_stacks(self.output.read_text(), top)


def summarise_stacks(collapsed: str, top: int = 25) -> str:
    """Self and total shares of each function in py-spy's collapsed stacks ("a;b;c count")."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [_short_frame(f) for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + count
    if not samples:
        return "py-spy: no samples"
    lines = [f"py-spy: {samples} samples; self time:"]
    lines += [f"  {n / samples:6.1%}  {f}" for f, n in sorted(own.items(), key=lambda i: -i[1])[:top]]
    lines.append("total time (on the stack):")
    lines += [f"  {n / samples:6.1%}  {f}" for f, n in sorted(total.items(), key=lambda i: -i[1])[:top]]
    return "\n".join(lines)


def _short_frame(frame: str) -> str:
    """"func (path/to/module.py:12)" as "func (module.py)": lines apart, one row per function."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(Path(path).parts[-2:])})" if path else name


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (and its waited-for children) used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
