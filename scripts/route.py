"""Route one task: ``route.py TASK.json [--explain] [--json] [--execute]`` (exit 4: no agent)."""

import sys

from seedcore_thin.cli.route import main

sys.exit(main())
