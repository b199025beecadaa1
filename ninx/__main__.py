"""`python -m ninx`: the same command line as `ninx` (see ninx.cli)."""
from .cli import main

raise SystemExit(main())
