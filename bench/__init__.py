"""Benchmarks of the running system beside the raw limits of the same machine, measured in the same run."""
