"""notebook tokens: participants may submit from a notebook with a personal bearer token

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 20:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_token_hash", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_participants_api_token_hash"), ["api_token_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participants_api_token_hash"))
        batch_op.drop_column("api_token_hash")
