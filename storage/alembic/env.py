"""Alembic's environment for the catalog: migrations run on the connection the caller passes.

``storage.schema.upgrade`` opens the connection (and holds the migration lock), so there is
no ``alembic.ini`` and no URL here; offline (SQL script) mode is not offered.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("the catalog's migrations run through storage.schema.upgrade(engine), "
                       "which passes a connection; offline mode is not supported")
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
