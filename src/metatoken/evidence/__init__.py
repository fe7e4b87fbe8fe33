"""The evidence: matched-capability frontiers and the claims table, computed from the results table."""
