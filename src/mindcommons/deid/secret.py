"""The site's pseudonymisation secret: a file, ``$MINDCOMMONS_DEID_SECRET`` or ``deid.key``."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from mindcommons.errors import ConfigError

ENV_VAR = "MINDCOMMONS_DEID_SECRET"


def load_secret(home: Path, secret_file: Path | None = None) -> bytes:
    """The secret used to key surrogates; kept outside any database.

    Order: ``secret_file``, then the environment variable, then ``<home>/deid.key``
    (created with 32 random bytes, mode 0600, on first use)."""
    if secret_file is not None:
        if not secret_file.is_file():
            raise ConfigError(f"--secret-file {secret_file} does not exist")
        value = secret_file.read_bytes().strip()
        if not value:
            raise ConfigError(f"--secret-file {secret_file} is empty")
        return value
    env = os.environ.get(ENV_VAR, "")
    if env:
        return env.encode()
    key = home / "deid.key"
    if not key.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return key.read_bytes().strip()
