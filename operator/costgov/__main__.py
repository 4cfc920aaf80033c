"""`python -m costgov` runs the command line."""

import sys

from costgov.cli import main

sys.exit(main())
