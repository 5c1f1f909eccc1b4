"""Start, stop or describe the embedded local stack: ``stack.py up|down|status``."""

import sys

from seedcore_thin.cli.stack import main

sys.exit(main())
