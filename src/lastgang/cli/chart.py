"""``lastgang chart``: the monitoring graphic (SM-4) of a site over local days, from the store.

Load profiles -> concept (inverted and virtual meters) -> allocation -> monitoring view
(:mod:`lastgang.monitoring`) -> a PNG (matplotlib) or an offline HTML page (plotly), chosen by
the extension of ``--out``. See ``docs/monitoring.md`` for how to read it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from lastgang.cli import app
from lastgang.cli._common import (
    DbOption,
    JsonOption,
    SiteOption,
    echo_json,
    epilog,
    fail,
    parse_day,
    progress_bar,
    store_session,
)
from lastgang.errors import InvalidInput
from lastgang.monitoring import load_monitoring
from lastgang.report.charts import VIEWS, View, ratios, render_html, render_png

__all__ = ["auto_view", "chart_command"]


def auto_view(first: date, last: date) -> View:
    """The bar size that suits a period: quarter hours for up to 2 days, hours for up to 2
    weeks, days for up to 3 months, months beyond."""
    days = (last - first).days + 1
    if days <= 2:
        return "day"
    if days <= 14:
        return "week"
    if days <= 92:
        return "month"
    return "year"


def _format(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix == ".png":
        return "png"
    if suffix in (".html", ".htm"):
        return "html"
    raise InvalidInput(
        f"--out {out}: name a .png file (a picture) or an .html file (an interactive page "
        "that works offline)"
    )


@app.command(
    "chart",
    help=(
        "Draw the monitoring graphic of a site (SM-4) for whole local days, from the store.\n\n"
        "Above 0: local production per source; a black line: the consumption of all billing "
        "units; below 0 (hatched red): the emergency power unit's own draw (standby, charging "
        "from the grid). Lower panel: import from and export to the grid at the grid "
        "connection. The header gives the self-consumption ratio (self-consumed / production) "
        "and the self-sufficiency ratio (self-consumed / consumption).\n\n"
        "[bold]--out[/bold] ending in .png writes a picture with bars of [bold]--view[/bold] "
        "(day: quarter hours in kW, week: hours, month: days, year: months; default: chosen "
        "by the length of the period). Ending in .html it writes one page with a day, its "
        "week, its month and the year, interactive and usable offline (plotly.js inlined)."
    ),
    epilog=epilog(
        "lastgang chart --site emergency-power --from 2025-06-14 --to 2025-06-14 --out day.png",
        "lastgang chart --site emergency-power --from 2025-01-01 --to 2025-12-31 "
        "--out year.png --view year",
        "lastgang chart --site emergency-power --from 2025-01-01 --to 2025-12-31 "
        "--out monitoring.html --day 2025-06-14",
    ),
)
def chart_command(
    site: SiteOption,
    first: Annotated[str, typer.Option("--from", help="First local day.", metavar="DATE")],
    last: Annotated[str, typer.Option("--to", help="Last local day (inclusive).", metavar="DATE")],
    out: Annotated[
        Path, typer.Option("--out", help="The file to write: .png or .html.", metavar="FILE")
    ],
    view: Annotated[
        str | None,
        typer.Option(
            "--view",
            help="PNG bars: day, week, month or year (default: by the length of the period).",
            metavar="VIEW",
            show_default=False,
        ),
    ] = None,
    day: Annotated[
        str | None,
        typer.Option(
            "--day",
            help="HTML: the day shown in quarter hours (default: the last day).",
            metavar="DATE",
            show_default=False,
        ),
    ] = None,
    title: Annotated[
        str | None,
        typer.Option("--title", help="Chart title (default: the site's name).", metavar="TEXT"),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    first_day, last_day = parse_day(first, "--from"), parse_day(last, "--to")
    shown_day = parse_day(day, "--day") if day is not None else None
    try:
        kind = _format(out)
        if view is not None and view not in VIEWS:
            raise InvalidInput(f"--view {view!r}: use one of {', '.join(VIEWS)}")
        if shown_day is not None and not first_day <= shown_day <= last_day:
            raise InvalidInput(f"--day {shown_day} is outside the period {first_day} to {last_day}")
    except InvalidInput as exc:
        raise fail(exc, as_json) from None
    chosen: View = view if view is not None else auto_view(first_day, last_day)
    with store_session(db, as_json) as store, progress_bar(not as_json) as bar:
        if bar is not None:
            bar.stage("loading load profiles and evaluating the concept")
        config, data = load_monitoring(store, site, first_day, last_day)
        name = title or config.site.name or config.site.id
        if bar is not None:
            bar.stage(f"drawing {out.name}")
        if kind == "png":
            render_png(data, out, title=name, resolution=chosen)
        else:
            render_html(data, out, title=name, day=shown_day or last_day)
    r = ratios(data)
    if as_json:
        echo_json(
            {
                "site": config.site.id,
                "file": str(out),
                "format": kind,
                "view": chosen if kind == "png" else None,
                "first_day": first_day.isoformat(),
                "last_day": last_day.isoformat(),
                **r,
            }
        )
        return
    share = r["self_sufficiency_ratio"]
    used = r["self_consumption_ratio"]
    Console().print(
        f"[bold]{escape(str(out))}[/bold] written: {escape(config.site.id)}, "
        f"{first_day} to {last_day}"
        + (f", {chosen} view" if kind == "png" else ", day/week/month/year views")
        + f"; production {r['production_kwh']:,.1f} kWh, consumption "
        f"{r['consumption_kwh']:,.1f} kWh, self-consumption "
        f"{'n/a' if used is None else f'{100 * used:.0f} %'}, self-sufficiency "
        f"{'n/a' if share is None else f'{100 * share:.0f} %'}"
        + (
            f" ({int(r['missing_slots'] or 0)} quarter hours without data)"
            if r["missing_slots"]
            else ""
        ),
        highlight=False,
    )
