"""Imports every command module so that each registers itself on :data:`lastgang.cli.app`."""

from lastgang.cli import ids  # noqa: F401
