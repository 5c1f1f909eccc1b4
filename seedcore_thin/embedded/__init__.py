"""The embedded local stack: PostgreSQL, FalkorDB and Ray on this machine, loopback only."""
