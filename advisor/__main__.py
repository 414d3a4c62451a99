"""`python -m advisor` runs the performance-advisor command line."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
