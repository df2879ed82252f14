"""The GeoReport v2 rules in plain Python: no aiohttp, grpc or prometheus_client import."""
