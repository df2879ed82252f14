"""The bare-Faust ceiling: one Faust agent that decodes every value of some topics, nothing else.

    python bench/bare_faust.py --topics T1,T2 --count N --protos M1:Class1,M2:Class2

Run by `benchkit.bare_faust_rate` in its own process (Faust owns its event loop). Reads the
topics from the start in a fresh consumer group with the platform's Faust settings (the same
transport, commit interval and serialisers as the services) and prints, once it has taken N
messages, one JSON line: {"messages": N, "seconds": first to Nth message}. Then it exits at once.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid

import faust
from benchkit import message_class  # a sibling module (bench/ is on sys.path)

from smartcity.settings import PlatformSettings
from smartcity.streams import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topics", required=True, help="full topic names, comma separated")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--protos", required=True,
                        help="module:MessageClass of each topic's values, comma separated")
    args = parser.parse_args()
    topics = args.topics.split(",")
    decoders = {t: message_class(p).FromString for t, p in zip(topics, args.protos.split(","), strict=True)}
    settings = PlatformSettings.from_env(f"bare-faust-{uuid.uuid4().hex[:8]}")
    app = create_app(settings, datadir=f"/tmp/{settings.group_id}")
    topic = app.topic(*topics, key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")

    @app.agent(topic)
    async def decode(stream: faust.StreamT) -> None:
        taken, started, cpu_started = 0, 0.0, 0.0
        async for event in stream.events():
            decoders[event.message.topic](event.value)
            taken += 1
            if taken == 1:
                started, cpu_started = time.perf_counter(), time.process_time()
            if taken >= args.count:
                print(json.dumps({"messages": taken, "seconds": time.perf_counter() - started,
                                  "cpu_seconds": time.process_time() - cpu_started}), flush=True)
                os._exit(0)  # a ceiling only: nothing to commit or clean up

    from faust.worker import Worker

    Worker(app, loglevel="WARNING", override_logging=False, redirect_stdouts=False,
           quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
