"""``python -m clusters.perfmodel SCENARIO.json`` (see cli.py)."""

from .cli import main

raise SystemExit(main())
