"""vector change log followed by the indexes"""
from alembic import op

from storage import migrations

revision, down_revision = "0004", "0003"


def upgrade() -> None:
    migrations._v4_vector_changes(op.get_bind())
