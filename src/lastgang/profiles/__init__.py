"""Readings -> 15-minute load profiles (TOR-4.2, 4.4, 5.0a, 5.0b, 6.2, 7.2, 7.2.1; Q-1, Q-2)."""

from lastgang.profiles.types import LoadProfile

__all__ = ["LoadProfile"]
