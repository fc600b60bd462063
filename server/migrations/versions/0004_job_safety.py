"""job safety: infrastructure retries wait (not_before), the open-submission limit locks the participant's row,
worker slots report their state (paused slots say why)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("not_before", sa.DateTime(), nullable=True))
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_submitted_at", sa.DateTime(), nullable=True))
    op.create_table(
        "worker_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("paused_until", sa.DateTime(), nullable=True),
        sa.Column("current_submission_id", sa.Integer(), nullable=True),
        sa.Column("jobs_done", sa.Integer(), nullable=False),
        sa.Column("infrastructure_failures", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("worker_slots")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("last_submitted_at")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_column("not_before")
