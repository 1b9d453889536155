"""Code every connector shares: points, the on-disk spool, backoff, health, env and logging helpers."""
