"""The dashboard (``plait ui``): a FastAPI app over one store, for one person or a team with logins.

Needs ``pip install 'plait[ui]'``; ``plait.ui.asgi:app`` serves it from uvicorn or gunicorn workers.
"""

from __future__ import annotations

from plait.ui.app import create_app

__all__ = ["create_app"]
