"""Document text encrypted at rest: the id of the key each ciphertext is sealed with.

Existing rows keep their plaintext (``text_key_id`` NULL) until the repository is opened
with a keyring, which encrypts them (and re-keys their content hashes) in one transaction.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("document") as batch:
        batch.add_column(sa.Column("text_key_id", sa.String(40), nullable=True))


def downgrade() -> None:
    # Ciphertexts cannot be turned back into text here (the key is not in the database):
    # refuse rather than leave rows nobody can read.
    bind = op.get_bind()
    encrypted = bind.execute(
        sa.text("SELECT COUNT(*) FROM document WHERE text_key_id IS NOT NULL")
    ).scalar()
    if encrypted:
        raise RuntimeError(
            f"{encrypted} documents are encrypted; downgrading below 0003 would make them "
            "unreadable (decrypt them first)"
        )
    with op.batch_alter_table("document") as batch:
        batch.drop_column("text_key_id")
