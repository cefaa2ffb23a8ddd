"""owner leases: heartbeats of the processes owning work"""
from alembic import op

from storage import migrations

revision, down_revision = "0009", "0008"


def upgrade() -> None:
    migrations._v9_owner_leases(op.get_bind())
