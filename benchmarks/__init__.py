"""Benchmarks of the pipeline, run by developers with `make bench`; not part of the runtime package."""
