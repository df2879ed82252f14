def main() -> None:  # replaced by the service's real entry point
    raise SystemExit('camera-health: not implemented yet')
