"""Draw the fleet: ``fleet.py --html fleet.html [--dot fleet.dot]`` (one offline page)."""

import sys

from seedcore_thin.cli.fleet import main

sys.exit(main())
