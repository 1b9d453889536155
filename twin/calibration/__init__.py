"""Calibration: estimating a line's parameters from what the real (or simulated) line recorded."""
