"""``python -m bench [--full]``: see :mod:`bench.suite` and bench/README.md."""

from __future__ import annotations

import sys

from bench.suite import main

if __name__ == "__main__":
    sys.exit(main())
