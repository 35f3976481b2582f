"""Simulated businesses with known churn causes, and the real CDNOW log, for demos and tests.

- ``retail``: the default scenario (decline windows before churn) and ``simulate``, the
  entry point for every scenario; ``retail_orders``, ``retail_contacts`` and ``seasons``
  hold its parts.
- ``hazard`` (with ``hazard_states``): competing departure hazards on latent states.
- ``subscription``: plans, usage events and cancellations.
- ``business``: ``SimulatedBusiness``, the table vocabularies and ``as_of``.
- ``profiles``: the customer types, read from ``config/profiles.yaml``.
- ``cdnow``: the CDNOW transaction log shipped in the ``lifetimes`` package.

Pure numpy/pandas; nothing here writes files.
"""
