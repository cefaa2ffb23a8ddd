"""the largest video id given out, never given again"""
from alembic import op

from storage import migrations

revision, down_revision = "0010", "0009"


def upgrade() -> None:
    migrations._v10_video_id_mark(op.get_bind())
