def main() -> None:  # replaced by the service's real entry point
    raise SystemExit('citizen-requests: not implemented yet')
