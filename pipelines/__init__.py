"""End-to-end recipes over featstore (and, as they land, anonymize and evaluate)."""
