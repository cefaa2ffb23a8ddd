"""video tags and cached summaries"""
from alembic import op

from storage import migrations

revision, down_revision = "0003", "0002"


def upgrade() -> None:
    migrations._v3_tags_and_summaries(op.get_bind())
