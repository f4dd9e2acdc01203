"""Benchmarks of the provider against the offline emulator on loopback; ``python -m benchmarks.run``.

Every figure is a ratio against a baseline measured in the same run; ``reports/benchmarks.md`` holds
each figure next to its goal. Nothing here is imported by the package.
"""
