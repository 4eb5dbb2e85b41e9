"""`python -m opsa <step> ...`: see opsa/cli."""

import sys

from opsa.cli import main

if __name__ == "__main__":
    sys.exit(main())
