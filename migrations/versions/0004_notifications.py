"""Notifications: one row per idempotency key, inserted (`sending`) before the e-mail is sent
and marked `sent` in the transaction that writes its audit event (activities/notifications.py).
The application role reads, inserts and updates it (status, sent_at, sent_to, chat_posted).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = postgresql.JSONB(astext_type=sa.Text())

GRANT = """
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'revops_app') THEN
    GRANT SELECT, INSERT, UPDATE ON notification TO revops_app;
  END IF;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("subject_ref", sa.Text(), nullable=False),
        sa.Column("recipients", JSONB, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="sending", nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_to", JSONB, nullable=True),
        sa.Column("chat_posted", sa.Boolean(), server_default="false", nullable=False),
        sa.CheckConstraint("status IN ('sending', 'sent')", name="notification_status_known"),
        sa.PrimaryKeyConstraint("idempotency_key"),
    )
    op.create_index(
        op.f("ix_notification_subject_ref"), "notification", ["subject_ref"], unique=False
    )
    op.execute(GRANT)


def downgrade() -> None:
    op.drop_index(op.f("ix_notification_subject_ref"), table_name="notification")
    op.drop_table("notification")  # its grants go with it
