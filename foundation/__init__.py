"""What every part of fabbrica reads the same way: durations and sizes, YAML files, strict models, errors.

Both the twin and the connectors build on this package, and it imports nothing of the
project, so that a duration or an invalid file means one thing everywhere.
"""
