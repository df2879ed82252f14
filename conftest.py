# Registers the platform's shared fixtures (broker, per-test topic prefix, service processes).
pytest_plugins = ["smartcity.testing"]
