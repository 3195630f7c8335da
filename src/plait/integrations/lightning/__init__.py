"""plait integration for lightning (see plugin.py)."""
