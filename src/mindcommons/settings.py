"""Typed settings read from the environment (MINDCOMMONS_*); CLI options map onto them."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mindcommons.errors import ConfigError

_SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Settings(BaseSettings):
    """Where mindcommons keeps its state. Every command also takes ``--home``."""

    model_config = SettingsConfigDict(env_prefix="MINDCOMMONS_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".mindcommons")
    # A PostgreSQL (or other SQLAlchemy) URL template for site repositories;
    # "{site}" is replaced by the site name. Empty: one SQLite file per site.
    database_url: str = ""

    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    def sites_dir(self) -> Path:
        return self.resolved_home() / "sites"

    def site_dir(self, site: str) -> Path:
        return self.sites_dir() / validate_site_name(site)

    def site_db_url(self, site: str) -> str:
        if self.database_url:
            return self.database_url.replace("{site}", validate_site_name(site))
        return f"sqlite:///{self.site_dir(site) / 'repository.sqlite'}"

    def reports_dir(self) -> Path:
        return self.resolved_home() / "reports"

    def federation_dir(self) -> Path:
        return self.resolved_home() / "federation"


def validate_site_name(site: str) -> str:
    if not _SITE_NAME.match(site):
        raise ConfigError(
            f"site name '{site}' is not valid: use lower-case letters, digits, '-' or '_' "
            "(at most 63 characters, starting with a letter or digit)"
        )
    return site


def model_threads() -> int | None:
    """``MINDCOMMONS_MODEL_THREADS`` (threads a model may use: llama.cpp, torch), None if unset.

    The local federation runs one model per site on one machine and sets it so their
    threads do not oversubscribe the cores (a model slows >10x when they do).
    """
    env = os.environ.get("MINDCOMMONS_MODEL_THREADS", "").strip()
    if not env:
        return None
    if not env.isdigit() or int(env) < 1:
        raise ConfigError(
            f"MINDCOMMONS_MODEL_THREADS={env!r} is not valid (expected a positive integer)"
        )
    return int(env)


def load_settings(home: Path | None = None) -> Settings:
    """Settings from the environment, with ``home`` (from ``--home``) taking precedence."""
    if home is not None:
        return Settings(home=home)
    return Settings()
