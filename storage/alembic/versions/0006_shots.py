"""shots of each video"""
from alembic import op

from storage import migrations

revision, down_revision = "0006", "0005"


def upgrade() -> None:
    migrations._v6_shots(op.get_bind())
