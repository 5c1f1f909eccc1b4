"""seedcore_thin: a thin control plane for fleets of AI agents on Ray."""
