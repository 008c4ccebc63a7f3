"""delivery claim index ends with id

The send loop claims ``WHERE issue_id = ? AND status = ? ORDER BY id LIMIT n`` every round;
with ``id`` in the index PostgreSQL walks it in order instead of sorting every due row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 19:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_claim")
        batch_op.create_index("ix_delivery_claim", ["issue_id", "status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_claim")
        batch_op.create_index("ix_delivery_claim", ["issue_id", "status"], unique=False)
