def main() -> None:  # replaced by the service's real entry point
    raise SystemExit('gateway: not implemented yet')
