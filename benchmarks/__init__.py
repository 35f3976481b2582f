"""Benchmarks of the pipeline, run from the project root as modules.

``.venv/bin/python -m benchmarks.quality`` (or ``early_warning``, ``speed``); each writes
its section of ``docs/benchmarks.md`` and exits 3 when a target it reports is missed
(``--no-fail-on-target`` exits 0). The modules import each other and the shared
reference implementations in ``tests/reference`` as packages, never by file path.
"""
