"""Kafka/Faust wiring, message translation (protobuf <-> core types) and metrics."""
