"""The dashboard as an ASGI application for a team server, configured by environment variables.

Run it with several workers behind a proxy that terminates HTTPS::

    PLAIT_STORE=s3://team/plait PLAIT_USERS=/etc/plait/users.json PLAIT_UI_ALLOWED_HOSTS=plait.example.com \\
        uvicorn plait.ui.asgi:app --workers 4 --proxy-headers --forwarded-allow-ips 127.0.0.1
    gunicorn -k uvicorn.workers.UvicornWorker -w 4 plait.ui.asgi:app

Every worker reads the same users file (its secret signs the session cookies, so a session
works on any worker) and the same store. :func:`create` is the factory
(``uvicorn --factory plait.ui.asgi:create``); the variables are listed at
:func:`plait.ui.config.from_environment`. Failed-login limits are counted per worker.
"""

from __future__ import annotations

from typing import Any

from plait.ui.app import create_app
from plait.ui.config import from_environment


def create() -> Any:
    """Build the dashboard from the environment (see :func:`plait.ui.config.from_environment`).

    :returns: the ASGI application.
    :raises InvalidInputError: for a setup that cannot work (e.g. no user in the users file).
    """
    import plait

    url, options, setup = from_environment()
    store = plait.Store(url, storage_options=options)
    return create_app(store, allow_edit=setup.auth.allow_edit, trusted_hosts=setup.trusted_hosts, auth=setup.auth)


def __getattr__(name: str) -> Any:
    # `plait.ui.asgi:app` builds the app when a server first asks for it, not at import
    if name == "app":
        globals()["app"] = application = create()
        return application
    raise AttributeError(name)
