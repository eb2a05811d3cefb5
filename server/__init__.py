"""The trackd tracking server: ingest, auth, storage and the read API.

Run it with ``python -m trackd.server``; embed it with :func:`create_app`::

    from trackd.server import Database, create_app, load_settings, migrate
    settings = load_settings({"data_dir": "/tmp/trackd"})
    db = Database.open(settings.db, settings.data_dir)
    migrate(db.writer)
    app = create_app(settings, db)
"""

from __future__ import annotations

from ._app import create_app
from ._db import Database
from ._migrations import migrate
from ._settings import Settings
from ._settings import load as load_settings

__all__ = ["Database", "Settings", "create_app", "load_settings", "migrate"]
