"""Support shared by the test suite (tests/) and the benchmarks (benchmarks/); not shipped.

Both start real servers on loopback ports; the code that does it lives here once, so that a
benchmark never imports from tests/ and the tests do not import a benchmark script. It imports
nothing of the project, and no shipped package imports it (tests/test_import_direction.py).
"""
