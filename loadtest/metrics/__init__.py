"""Measurements: histograms, the recorder and its mergeable snapshot, the report model."""
