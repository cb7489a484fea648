"""Run Alembic programmatically: ``jobs migrate``, ``make run`` and the test fixtures all come through here."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(url), revision)


def autogenerate(url: str, message: str) -> None:
    """Write a new revision from the difference between the models and the database (developers only)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
