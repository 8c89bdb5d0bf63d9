"""Initial schema: site, dataset, participant, document, measure, signal, outcome, ingest_batch.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = 100
_NAME = 200


def _pk() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), nullable=False)


def _participant_child(name: str, *columns: sa.Column[object], key: tuple[str, ...]) -> None:
    op.create_table(
        name,
        _pk(),
        sa.Column("participant_pk", sa.Integer(), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["participant_pk"],
            ["participant.id"],
            name=f"fk_{name}_participant_pk_participant",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
        sa.UniqueConstraint(
            "participant_pk", *key, name=f"uq_{name}_participant_pk_{'_'.join(key)}"
        ),
    )
    op.create_index(f"ix_{name}_participant_pk", name, ["participant_pk"])


def upgrade() -> None:
    op.create_table(
        "site",
        _pk(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_site"),
        sa.UniqueConstraint("name", name="uq_site_name"),
    )
    op.create_table(
        "dataset",
        _pk(),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(_NAME), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("licence", sa.Text(), nullable=False),
        sa.Column("consent_basis", sa.Text(), nullable=False),
        sa.Column("allowed_purposes", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("collection_start", sa.Date(), nullable=True),
        sa.Column("collection_end", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name="fk_dataset_site_id_site", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dataset"),
        sa.UniqueConstraint("site_id", "name", name="uq_dataset_site_id_name"),
    )
    op.create_table(
        "participant",
        _pk(),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.String(_ID), nullable=False),
        *[
            sa.Column(col, sa.String(_NAME), nullable=False)
            for col in (
                "age_band",
                "gender",
                "ethnicity_local",
                "ethnicity_category",
                "country",
                "primary_language",
            )
        ],
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
            name="fk_participant_dataset_id_dataset",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_participant"),
        sa.UniqueConstraint(
            "dataset_id", "participant_id", name="uq_participant_dataset_id_participant_id"
        ),
    )
    _participant_child(
        "document",
        sa.Column("document_id", sa.String(_ID), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("deid_status", sa.String(20), nullable=False),
        key=("document_id",),
    )
    op.create_index("ix_document_kind", "document", ["kind"])
    _participant_child(
        "measure",
        sa.Column("instrument", sa.String(_NAME), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        key=("instrument", "date"),
    )
    _participant_child(
        "signal",
        sa.Column("name", sa.String(_NAME), nullable=False),
        sa.Column("unit", sa.String(_NAME), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("time", sa.DateTime(), nullable=False),
        key=("name", "time"),
    )
    _participant_child(
        "outcome",
        sa.Column("name", sa.String(_NAME), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        key=("name", "date"),
    )
    op.create_table(
        "ingest_batch",
        _pk(),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("batch_hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
            name="fk_ingest_batch_dataset_id_dataset",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_batch"),
    )


def downgrade() -> None:
    for name in ("ingest_batch", "outcome", "signal", "measure", "document"):
        op.drop_table(name)
    op.drop_table("participant")
    op.drop_table("dataset")
    op.drop_table("site")
