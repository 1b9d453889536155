"""Loaded by the fork server that starts local workers: one tiny run before any worker exists.

The engines load some of their parts on first use (numba-compiled kernels and their
imports take a second or more). Running a two-machine line for ten simulated minutes
on each engine in the fork server loads them once; every worker forked from it starts ready, instead
of paying that second again in each new process.
"""

from twin.experiments.runner import warm_up

warm_up()
