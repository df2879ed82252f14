"""The gateway's rules as plain Python: the API, read views, auth, validation, paging, fan-out.

Nothing here imports grpc, aiokafka, faust, prometheus_client or opentelemetry (an import
contract in `make lint` checks it); `gateway.adapters` puts these rules on the wire.
"""
