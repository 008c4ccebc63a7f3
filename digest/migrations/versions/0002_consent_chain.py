"""consent chain and subscriber email hash

Adds ``subscribers.email_hash`` (so the recipient query can exclude suppressed addresses in SQL),
``subscribers.erased_at``, a unique ``consent_events.prev_hash`` (the chain cannot fork), and
database triggers that refuse UPDATE and DELETE on ``consent_events``: the log is append-only
below the ORM too.

Note for later migrations: on SQLite, a batch operation on ``consent_events`` recreates the table
and drops its triggers; re-create them (``_create_guards``) in such a migration.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 16:51:50.162574
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import digest.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GUARD_MESSAGE = "consent_events is append-only"


def _create_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION consent_events_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION '{GUARD_MESSAGE}'; "
            "END $$"
        )
        op.execute(
            "CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events "
            "FOR EACH ROW EXECUTE FUNCTION consent_events_append_only()"
        )
    else:
        for verb in ("update", "delete"):
            op.execute(
                f"CREATE TRIGGER consent_events_no_{verb} BEFORE {verb.upper()} ON consent_events "
                f"BEGIN SELECT RAISE(ABORT, '{GUARD_MESSAGE}'); END"
            )


def _drop_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS consent_events_append_only ON consent_events")
        op.execute("DROP FUNCTION IF EXISTS consent_events_append_only()")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS consent_events_no_{verb}")


def upgrade() -> None:
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_consent_prev_hash", ["prev_hash"])

    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "email_hash",
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(sa.Column("erased_at", digest.models.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_subscribers_email_hash"), ["email_hash"], unique=False)

    # Existing rows get the same hash digest.subscribers.consent.email_hash computes.
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, email FROM subscribers")).all()
    for row_id, email in rows:
        digest_ = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        bind.execute(
            sa.text("UPDATE subscribers SET email_hash = :h WHERE id = :i"),
            {"h": digest_, "i": row_id},
        )

    _create_guards()


def downgrade() -> None:
    _drop_guards()
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscribers_email_hash"))
        batch_op.drop_column("erased_at")
        batch_op.drop_column("email_hash")

    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_consent_prev_hash", type_="unique")
