"""Entry point: `python -m smartcity_cli` (or the `smartcity` console script)."""

from __future__ import annotations

from smartcity_cli.cli import main

if __name__ == "__main__":
    main()
