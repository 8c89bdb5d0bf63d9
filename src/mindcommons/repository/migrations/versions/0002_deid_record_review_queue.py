"""De-identification record on document; review_item queue of sampled documents.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("document") as batch:
        batch.add_column(sa.Column("deid_record", sa.JSON(), nullable=True))
    op.create_table(
        "review_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_pk", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_pk"],
            ["document.id"],
            name="fk_review_item_document_pk_document",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batch.id"],
            name="fk_review_item_batch_id_ingest_batch",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_review_item"),
        sa.UniqueConstraint("document_pk", name="uq_review_item_document_pk"),
    )
    op.create_index("ix_review_item_batch_id", "review_item", ["batch_id"])
    op.create_index("ix_review_item_status", "review_item", ["status"])


def downgrade() -> None:
    op.drop_table("review_item")
    with op.batch_alter_table("document") as batch:
        batch.drop_column("deid_record")
