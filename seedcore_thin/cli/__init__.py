"""Command-line entry points; each ``scripts/*.py`` is a two-line wrapper around one of these."""
