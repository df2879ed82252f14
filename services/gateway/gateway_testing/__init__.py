"""Test support of the gateway, outside its server package: what the gateway's tests and
bench/bench_gateway.py share.

    messages       builders of the messages the gateway reads, and `produce`
    process        the gateway as a child process, its test tokens, stubs, waiting helpers
    fake_requests  a stand-in citizen-requests service on the real request ledger
    in_memory      the API in memory on that ledger, without Kafka (make_api)
"""

from gateway_testing.fake_requests import FakeRequestsService
from gateway_testing.messages import (
    CRITICAL,
    OK,
    PROBLEM,
    RS,
    ap,
    camera,
    incident,
    produce,
    reason,
    request_stats,
    seal_as_the_gateway,
    service_request,
    site_stats,
    submit_request,
    topic,
)
from gateway_testing.process import (
    TEST_TOKENS,
    GatewayProcess,
    GatewayStarter,
    Stubs,
    auth,
    eventually,
    make_starter,
    rpc_error,
    write_tokens,
)

__all__ = [
    "CRITICAL",
    "OK",
    "PROBLEM",
    "RS",
    "TEST_TOKENS",
    "FakeRequestsService",
    "GatewayProcess",
    "GatewayStarter",
    "Stubs",
    "ap",
    "auth",
    "camera",
    "eventually",
    "incident",
    "make_starter",
    "produce",
    "reason",
    "request_stats",
    "rpc_error",
    "seal_as_the_gateway",
    "service_request",
    "site_stats",
    "submit_request",
    "topic",
    "write_tokens",
]
