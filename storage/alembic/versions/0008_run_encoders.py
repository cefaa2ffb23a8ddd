"""the encoder that made each run's vectors"""
from alembic import op

from storage import migrations

revision, down_revision = "0008", "0007"


def upgrade() -> None:
    migrations._v8_run_encoders(op.get_bind())
