"""The validated tables a stage reads, as a protocol: ``pipelines.catalog.Tables`` is one,
and models never import the pipeline that reads them."""

from __future__ import annotations

from typing import Protocol

import pandas as pd


class BusinessTables(Protocol):
    """One business's validated tables (``None``: the business has no such table)."""

    @property
    def transactions(self) -> pd.DataFrame: ...

    @property
    def interactions(self) -> pd.DataFrame | None: ...

    @property
    def customers(self) -> pd.DataFrame | None: ...

    @property
    def subscriptions(self) -> pd.DataFrame | None: ...
