"""Obviously-correct pandas references for the fast feature code.

Written for reading, not speed: the unit tests check the pipeline's features equal these,
and the speed benchmark (``benchmarks/speed.py``) times :func:`rfm.customer_rfm` against
the pipeline. Import them as ``tests.reference.rfm`` / ``tests.reference.features`` from
the project root (pytest puts it on the path; ``python -m benchmarks.speed`` runs there).
"""
