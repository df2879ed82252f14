def main() -> None:  # replaced by the service's real entry point
    raise SystemExit('wifi-telemetry: not implemented yet')
