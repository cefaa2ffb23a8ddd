"""ingest jobs queued by the server"""
from alembic import op

from storage import migrations

revision, down_revision = "0002", "0001"


def upgrade() -> None:
    migrations._v2_ingest_jobs(op.get_bind())
