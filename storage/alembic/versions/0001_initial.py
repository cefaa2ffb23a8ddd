"""initial: videos, snippets, embeddings, ingest runs"""
from alembic import op

from storage import migrations

revision, down_revision = "0001", None


def upgrade() -> None:
    migrations._v1_initial(op.get_bind())
