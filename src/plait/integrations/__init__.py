"""Integrations with ML frameworks, each a plait plugin loaded through the ``plait`` entry points."""
