"""Persistence: the SQL catalog of videos and snippets, and the FAISS vector indices."""
