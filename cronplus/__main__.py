"""`python -m cronplus` is the `cronplus` command."""

import sys

from cronplus.cli import main

sys.exit(main())
