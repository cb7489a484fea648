"""``jobs admin sessions ...``: operator commands on the admin's server-side sessions (app.admin.sessions)."""

from __future__ import annotations

import sys

import click
import redis

from app.errors import SettingsError


@click.group()
def sessions() -> None:
    """The admin's login sessions (kept in Redis)."""


@sessions.command()
@click.option(
    "--user", type=click.Choice(["admin", "viewer"]), default=None, help="Only this user's sessions."
)
def revoke(user: str | None) -> None:
    """End every admin session now (or only USER's): the next request of each must log in again."""
    from app.admin.sessions import revoke as revoke_sessions
    from app.redis_client import get_redis

    try:
        ended = revoke_sessions(get_redis(), user=user)
    except SettingsError as err:
        click.echo(f"jobs: {err}", err=True)
        sys.exit(2)
    except redis.RedisError as err:
        click.echo(f"jobs: Redis is unavailable ({type(err).__name__}); no session was revoked", err=True)
        sys.exit(1)
    click.echo(f"revoked {ended} admin session(s)")
