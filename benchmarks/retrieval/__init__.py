"""Retrieval benchmark (``vidsonar bench retrieval``) and ingestion throughput (``bench ingest``).

``datasets`` reads captioned video sets, ``shipped`` makes the small one the project ships,
``systems`` loads the spaces and the shared snippets, ``metrics`` holds Table 2's numbers,
``results`` the DuckDB table, ``plots`` the figures; ``run`` and ``ingest`` are the scripts.
"""
