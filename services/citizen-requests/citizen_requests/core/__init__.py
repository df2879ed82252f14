"""The rules of citizen-requests: lifecycle, routing, SLAs, duplicates, statistics, the ledger.

Plain Python over the generated request types (the protobuf messages are the entities here, see
the service's README). Nothing in this package imports Faust, aiokafka, gRPC, Prometheus or
OpenTelemetry: the adapters do that, and they call in here.
"""
