"""Open311 GeoReport v2 over HTTP: citizens' apps and 311 clients reach the command center.

A facade on the gateway's gRPC API (see the service README for why): `core/` holds the
GeoReport rules (catalogue, parameters, views, documents), `adapters/` the HTTP server and the
gRPC client of the gateway.
"""
