"""video snippet grid: window and hop"""
from alembic import op

from storage import migrations

revision, down_revision = "0007", "0006"


def upgrade() -> None:
    migrations._v7_video_grid(op.get_bind())
