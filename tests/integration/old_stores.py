"""A current store's tables made as an earlier schema version wrote them, for the tests of
reading such a store as it is and of its upgrade."""

from __future__ import annotations

import duckdb

from lastgang.store import duckdb_store


def as_version(con: duckdb.DuckDBPyConnection, version: int) -> None:
    """Rewrite the profile and interval value tables of a current store (on ``con``) as schema
    ``version`` had them, and say it is of that version. The raw archive and the billing runs'
    tables are left as they are (their tests rewrite them themselves)."""
    if version < 7:
        _profiles_as_before_7(con)
    if version < 6:
        _intervals_as_before_6(con)
    if version < 4:  # version 3 had no pair numbers
        for table in ("profile_values", "profile_pairs"):
            con.execute(f"ALTER TABLE {table} DROP COLUMN pair")
    if version < 3:  # version 2 had no profile_pairs
        con.execute("DROP TABLE profile_pairs")
    con.execute("UPDATE store_info SET value = ? WHERE key = 'schema_version'", [str(version)])


def _profiles_as_before_7(con: duckdb.DuckDBPyConnection) -> None:
    """Versions 4 to 6: the site, location and meter as strings in every profile value row,
    pairs numbered per site with DuckDB's hash of location and meter beside them."""
    con.execute(
        """
        CREATE TABLE old_pairs AS SELECT site_id, location_id, meter,
            hash(location_id, meter) AS h,
            (row_number() OVER (PARTITION BY site_id ORDER BY pair))::INTEGER AS pair,
            pair AS new_pair
        FROM profile_pairs
        """
    )
    con.execute(
        f"""
        CREATE TABLE old_values AS SELECT v.site_id, v.location_id, v.slot, v.import_kwh,
            v.export_kwh, v.quality, v.batch, v.meter, p.pair
        FROM {duckdb_store._PROFILE_ROWS} v JOIN old_pairs p ON v.pair = p.new_pair
        """
    )
    con.execute("ALTER TABLE old_pairs DROP COLUMN new_pair")
    for table in ("values", "pairs"):
        con.execute(f"DROP TABLE profile_{table}")
        con.execute(f"ALTER TABLE old_{table} RENAME TO profile_{table}")


def _intervals_as_before_6(con: duckdb.DuckDBPyConnection) -> None:
    """Version 5 and before: the site, location and meter as strings in every interval value
    row."""
    con.execute(f"CREATE TABLE old_rows AS SELECT * FROM {duckdb_store._INTERVAL_ROWS}")
    con.execute("DROP TABLE interval_values")
    con.execute("DROP TABLE interval_keys")
    con.execute("ALTER TABLE old_rows RENAME TO interval_values")
