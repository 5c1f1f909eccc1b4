"""Example agents the example fleet runs: users' code, not the control plane.

Each is an entrypoint class (``setup``/``handle``/``health``/``shutdown``, see
:mod:`seedcore_thin.agent`) named in ``cypher/fixtures/example_fleet.cypher``.
"""
