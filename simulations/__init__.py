"""The simulated pilot line: shipped line files, experiments and (later) virtual PLCs and sensors."""
