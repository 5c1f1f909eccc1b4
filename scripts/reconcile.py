"""Make the running Ray actors match the graph: ``reconcile.py plan|apply|watch``."""

import sys

from seedcore_thin.cli.reconcile import main

sys.exit(main())
