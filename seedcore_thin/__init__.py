"""seedcore_thin: a thin control plane for fleets of AI agents on Ray."""

from seedcore_thin.local import keep_ray_on_loopback

# Before anything imports ray: the embedded stack listens on loopback only.
keep_ray_on_loopback()
