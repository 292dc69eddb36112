"""Imports every command module so that each registers itself on :data:`lastgang.cli.app`."""

import lastgang.cli.billing
import lastgang.cli.concept  # noqa: F401
import lastgang.cli.data as _data  # noqa: F401
from lastgang.cli import (
    chart,  # noqa: F401
    demo,  # noqa: F401
    ids,  # noqa: F401
    listen,  # noqa: F401
    serve,  # noqa: F401
)
