"""Exact results the twin is validated against: Markov chains of tandem lines and queueing formulas."""
