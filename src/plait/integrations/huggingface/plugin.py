"""The huggingface plugin: registered through the "plait" entry-point group; imports cleanly without huggingface."""

from __future__ import annotations
