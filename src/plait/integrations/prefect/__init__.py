"""plait integration for prefect (see plugin.py)."""
