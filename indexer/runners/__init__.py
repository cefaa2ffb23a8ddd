"""Runners that compose the ingestion stages: local threads (local.py) or Ray Data (ray.py)."""
