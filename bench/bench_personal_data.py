"""Benchmark: what sealing and opening contact data costs the gateway, per request, in process.

    uv run python bench/bench_personal_data.py [--contacts 20000] [--rounds 3]

Seals that many reporters' contact details (subject hash, AES-256-GCM under the subject's data
key) and shows them back to the routed OPD (copy of the request, open, fill the reporter), the
keys in memory as the gateway holds them. The ceiling, in the same run: AES-256-GCM alone on
the same serialized bytes (what no envelope code can beat). Prints ops/s and microseconds per
operation; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smartcity.personal_data.local import InMemoryKeys, random_keyring
from smartcity.personal_data.subjects import SubjectHasher
from smartcity.personal_data.vault import ContactVault
from smartcity.v1 import requests_pb2


def reporters(count: int) -> list[Any]:
    return [requests_pb2.Reporter(name=f"Warga {i}", phone=f"0812{i:08d}", email=f"warga{i}@contoh.id")
            for i in range(count)]


def ceiling(people: list[Any]) -> float:
    """AES-256-GCM of each serialized Reporter with one key: seconds for all."""
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    plain = [p.SerializeToString() for p in people]
    start = time.perf_counter()
    for data in plain:
        aead.encrypt(secrets.token_bytes(12), data, b"aad")
    return time.perf_counter() - start


async def seal_all(vault: ContactVault, people: list[Any]) -> tuple[float, list[Any]]:
    requests = []
    start = time.perf_counter()
    for i, person in enumerate(people):
        sealed = await vault.seal(person, f"req-{i}")
        assert sealed is not None
        request = requests_pb2.ServiceRequest(request_id=f"req-{i}", opd_code="DPMPTSP")
        request.encrypted_reporter.CopyFrom(sealed.contact)
        requests.append(request)
    return time.perf_counter() - start, requests


def show_all(vault: ContactVault, requests: list[Any]) -> float:
    start = time.perf_counter()
    for request in requests:
        assert vault.for_caller(request, sees_contact=True).revealed
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    people = reporters(args.contacts)
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        # A fresh vault each round: every subject gets its data key made (the first submit).
        vault = ContactVault(InMemoryKeys(random_keyring()), SubjectHasher(secrets.token_bytes(32)))
        sealed_s, requests = await seal_all(vault, people)
        timings = {"aes_gcm_ceiling": ceiling(people), "seal_new_subject": sealed_s,
                   "seal_known_subject": (await seal_all(vault, people))[0],
                   "open_for_routed_opd": show_all(vault, requests)}
        best = {k: min(v, best.get(k, v)) for k, v in timings.items()}
    figures: dict[str, float | int] = {"contacts": args.contacts}
    for name, seconds in best.items():
        figures[f"{name}_per_s"] = round(args.contacts / seconds)
        figures[f"{name}_us"] = round(seconds / args.contacts * 1e6, 2)
        print(f"{name:22s} {args.contacts / seconds:>10.0f}/s  {seconds / args.contacts * 1e6:7.2f} us each")
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
