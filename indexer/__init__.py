"""Ingestion: decode videos, cut them into 8-frame snippets, encode, and record them."""
