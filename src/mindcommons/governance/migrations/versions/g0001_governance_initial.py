"""Governance store: users, credentials (sessions, API tokens), projects, site approvals.

Revision ID: g0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "g0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gov_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("sites", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_user")),
        sa.UniqueConstraint("username", name=op.f("uq_gov_user_username")),
    )
    op.create_table(
        "gov_credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gov_user.id"],
            name=op.f("fk_gov_credential_user_id_gov_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_credential")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gov_credential_token_hash")),
    )
    op.create_index(op.f("ix_gov_credential_user_id"), "gov_credential", ["user_id"])
    op.create_table(
        "gov_project",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_project")),
        sa.UniqueConstraint("name", name=op.f("uq_gov_project_name")),
    )
    op.create_table(
        "gov_approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_approval")),
        sa.UniqueConstraint("project", "site", name=op.f("uq_gov_approval_project_site")),
    )
    op.create_index(op.f("ix_gov_approval_site"), "gov_approval", ["site"])


def downgrade() -> None:
    op.drop_index(op.f("ix_gov_approval_site"), table_name="gov_approval")
    op.drop_table("gov_approval")
    op.drop_table("gov_project")
    op.drop_index(op.f("ix_gov_credential_user_id"), table_name="gov_credential")
    op.drop_table("gov_credential")
    op.drop_table("gov_user")
