"""The local dashboard (``plait ui``): a FastAPI app over one store. Needs ``pip install 'plait[ui]'``."""

from __future__ import annotations

from plait.ui.app import create_app

__all__ = ["create_app"]
