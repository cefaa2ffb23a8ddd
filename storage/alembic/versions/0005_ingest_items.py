"""ingestion items (resumable runs) and job owners"""
from alembic import op

from storage import migrations

revision, down_revision = "0005", "0004"


def upgrade() -> None:
    migrations._v5_ingest_items(op.get_bind())
