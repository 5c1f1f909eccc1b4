"""graph fixtures (filled in by the owning module's work)."""
