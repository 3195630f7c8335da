"""The prefect plugin: registered through the "plait" entry-point group; imports cleanly without prefect."""

from __future__ import annotations
