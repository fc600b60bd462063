"""the instructor's cockpit: moderation and password-reset codes for participants, name history, earlier
verdicts and low-priority uncharged reruns for submissions, the uid and GPU of each worker slot

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hidden", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("disqualified_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("reset_code_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("reset_code_expires_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verdicts", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("charged", sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table("worker_slots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("gpu", sa.Integer(), nullable=True))
    op.create_table(
        "name_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("old_name", sa.String(length=32), nullable=False),
        sa.Column("new_name", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_name_changes_participant_id", "name_changes", ["participant_id"])


def downgrade() -> None:
    op.drop_index("ix_name_changes_participant_id", table_name="name_changes")
    op.drop_table("name_changes")
    with op.batch_alter_table("worker_slots", schema=None) as batch_op:
        batch_op.drop_column("gpu")
        batch_op.drop_column("uid")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_column("charged")
        batch_op.drop_column("priority")
        batch_op.drop_column("verdicts")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("reset_code_expires_at")
        batch_op.drop_column("reset_code_hash")
        batch_op.drop_column("disqualified_reason")
        batch_op.drop_column("hidden")
