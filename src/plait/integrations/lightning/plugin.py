"""The lightning plugin: registered through the "plait" entry-point group; imports cleanly without lightning."""

from __future__ import annotations
