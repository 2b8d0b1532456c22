"""`python -m controller`, the same as `stagectl`."""

from .cli import main

raise SystemExit(main())
