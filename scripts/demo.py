"""``make demo``: the whole story on this machine, in a terminal a person can read.

Brings up the embedded stack, migrates both databases, loads the example fleet, reconciles
it onto Ray, prints the fleet from ``seedcore.active_instance``, routes sample tasks with
their explanations, and leaves the stack up.
"""

import sys

from seedcore_thin.local.demo import main

sys.exit(main())
