"""event control: announcement and freeze, per-exercise open/deadline/quota/reveal, quota grants, final selection

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("announcement", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("freeze_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("final", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "exercise_controls",
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("open", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("deadline", sa.DateTime(), nullable=True),
        sa.Column("quota_set", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("quota_count", sa.Integer(), nullable=True),
        sa.Column("quota_seconds", sa.Integer(), nullable=True),
        sa.Column("revealed_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("slug"),
    )
    op.create_table(
        "quota_grants",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("extra", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("participant_id", "slug"),
    )
    op.create_index("ix_submissions_participant_created", "submissions", ["participant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_submissions_participant_created", table_name="submissions")
    op.drop_table("quota_grants")
    op.drop_table("exercise_controls")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_column("final")
    with op.batch_alter_table("event_settings", schema=None) as batch_op:
        batch_op.drop_column("freeze_at")
        batch_op.drop_column("announcement")
