"""The gRPC gateway: read views built from the compacted topics, API calls turned into commands.

`core/` holds the rules (no gRPC, Kafka or metrics import), `adapters/` the wiring, `config.py`
the settings, `__main__.py` the entry point.
"""
