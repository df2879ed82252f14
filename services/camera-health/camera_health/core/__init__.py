"""The rules of the service: pure Python, no Faust, aiokafka, grpc, prometheus_client or tracing
(the import contracts in pyproject.toml check it)."""
