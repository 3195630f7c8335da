"""plait integration for huggingface (see plugin.py)."""
