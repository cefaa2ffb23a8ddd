"""Concept spaces: a text encoder and a vision encoder that embed into one vector space.

Spaces are configured as data (``encoders/configs/*.json``) and looked up by name through
``encoders.registry``. Indexing and search share them.
"""
