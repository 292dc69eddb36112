"""Checks of a whole measurement concept (``lastgang check``)."""

from __future__ import annotations

from lastgang.concept.model import Site
from lastgang.errors import Problem


def check_site(site: Site) -> list[Problem]:
    """Every problem of a site configuration, errors and warnings, each with its place."""
    return []
