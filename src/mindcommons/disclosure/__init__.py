"""Disclosure control for federated analytics: suppression, DP noise, epsilon ledger.

Importing this package registers the site job type ``query`` in
``mindcommons.federation.site.JOB_TYPES``; ``run_query`` is the coordinator's entry point.
"""

from __future__ import annotations

from mindcommons.disclosure import site_query as site_query
from mindcommons.disclosure.query import QueryResult, run_query

__all__ = ["QueryResult", "run_query", "site_query"]
