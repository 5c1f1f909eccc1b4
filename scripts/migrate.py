"""Apply pending SQL and Cypher migrations: ``migrate.py --pg-dsn DSN [--dry-run]``."""

import sys

from seedcore_thin.cli.migrate import main

sys.exit(main())
