"""pytest's root: the Markdown files sit above tests/, so the doc tests are wired here.

tests/fixtures_docs.py collects README.md and docs/*.md and runs their blocks.
"""

import seedcore_thin  # noqa: F401  (first: it keeps every test Ray on loopback)

pytest_plugins = ["tests.fixtures_pg", "tests.fixtures_graph", "tests.fixtures_docs"]
