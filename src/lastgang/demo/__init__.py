"""Demo data: a realistic year of meter data for a shipped example site (``docs/demo-data.md``).

:func:`generate_site_year` models the physical flows of a building minute by minute (PV, households,
common areas, heating, an emergency power unit with battery) and writes what its meters would
deliver, in the CSV formats a user imports (``docs/data-formats.md``). The ground truth comes back
as arrays so tests can compare an import with it.
"""

from lastgang.demo.generate import (
    DemoModel,
    Exchange,
    Gap,
    GeneratedData,
    generate_site_period,
    generate_site_year,
    monitoring_data,
    site_to_toml,
)

__all__ = [
    "DemoModel",
    "Exchange",
    "Gap",
    "GeneratedData",
    "generate_site_period",
    "generate_site_year",
    "monitoring_data",
    "site_to_toml",
]
