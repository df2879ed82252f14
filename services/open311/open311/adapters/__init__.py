"""What the facade talks through: the HTTP server (aiohttp), the gateway's gRPC API, metrics."""
