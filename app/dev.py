"""``jobs dev``: every process of the platform in one terminal (honcho), on the embedded defaults.

It migrates the embedded database, seeds demo data when there are no users, and runs the processes of the
``Procfile`` side by side with their output prefixed, as ``honcho start`` would.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer

from app.settings import PROJECT_ROOT, get_settings, reset_settings

#: Defaults that make the platform pleasant on a laptop; anything already set in the environment wins.
DEV_DEFAULTS = {"LOG_FORMAT": "console", "LOG_LEVEL": "INFO"}


def dev_environment() -> dict[str, str]:
    env = {**DEV_DEFAULTS, **os.environ}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def prepare(demo_users: int) -> None:
    """Migrate and, on an empty database, seed demo data."""
    from sqlalchemy import func, select

    from app.db import migrate
    from app.db.models import User
    from app.db.session import session_scope

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    with session_scope() as session:
        empty = session.scalar(select(func.count()).select_from(User)) == 0
        if empty and demo_users:
            from app.demo import seed

            print(f"seeding {demo_users} demo users: {seed(session, users=demo_users)}", flush=True)


def run_dev(*, demo_users: int = 50, procfile: Path = PROJECT_ROOT / "Procfile") -> int:
    env = dev_environment()
    from app.testing.samgov_server import dev_process

    samgov = dev_process(env)  # no SAM.gov key: a local simulator serves the sync queue
    os.environ.update(env)
    reset_settings()
    prepare(demo_users)
    settings = get_settings()
    print(f"\n  Admin:   http://127.0.0.1:{settings.admin_port}/admin/queues", flush=True)
    print(f"  Metrics: http://127.0.0.1:{settings.admin_port}/metrics", flush=True)
    print(f"  Emails:  {settings.email_outbox_dir} (EMAIL_BACKEND={settings.email_backend})", flush=True)
    print(f"  SAM.gov: {settings.sam_gov_base_url}{' (simulator)' if samgov else ''}\n", flush=True)
    manager = Manager(Printer(sys.stdout))
    if samgov:
        manager.add_process("samgov", samgov, env=env, cwd=str(PROJECT_ROOT))
    for name, command in parse_procfile(procfile.read_text()).processes.items():
        manager.add_process(name, command, env=env, cwd=str(PROJECT_ROOT))
    manager.loop()
    return int(manager.returncode or 0)
