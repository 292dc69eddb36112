"""Imports every command module so that each registers itself on :data:`lastgang.cli.app`."""

import lastgang.cli.billing
import lastgang.cli.concept  # noqa: F401
import lastgang.cli.data as _data  # noqa: F401
from lastgang.cli import ids  # noqa: F401
from lastgang.cli import serve  # noqa: F401
from lastgang.cli import chart  # noqa: F401
from lastgang.cli import demo  # noqa: F401
from lastgang.cli import listen  # noqa: F401
