"""Every page against its ceiling and the tutorial: one table from a run's results, and
the targets it is checked against."""

from __future__ import annotations

import statistics
from typing import Any

HEAD = (
    f"{'route':<32} {'app req/s':>9} {'ceiling':>8} {'ratio':>6} {'tutorial':>9}"
    f" {'app p99':>8} {'tut. p99':>8}"
)


def page_rows(live_sessions: int) -> list[tuple[str, str, str]]:
    """(label, result name, ceiling's result name) of each route in the table."""
    return [
        ("GET / (sign-in page)", "signin_page", "ceiling_constant"),
        ("GET /home", "home", "ceiling"),
        (f"GET /sessions ({live_sessions} sessions)", "sessions", "ceiling"),
        ("GET /session/countdown", "countdown", "ceiling"),
    ]


def page_table(results: dict[str, Any], live_sessions: int) -> list[dict[str, Any]]:
    """A row for each route measured with its ceiling: req/s, ratio, tutorial, p99s."""
    tutorial = results.get("tutorial", {})
    table = []
    for label, name, ceiling in page_rows(live_sessions):
        if name not in results or ceiling not in results:
            continue
        app, top = results[name], results[ceiling]
        tut = tutorial.get(name)
        table.append({
            "route": label, "name": name, "app_rps": app["rps"], "ceiling": ceiling,
            "ceiling_rps": top["rps"], "ratio": round(ratio(app, top), 3),
            "tutorial_rps": tut["rps"] if tut else None, "app_p99_ms": app["p99_ms"],
            "tutorial_p99_ms": tut["p99_ms"] if tut else None,
        })  # fmt: skip
    return table


def ratio(app: dict[str, Any], ceiling: dict[str, Any]) -> float:
    """A route's share of its ceiling: the median of the rounds' shares, each round's page
    against the same round's ceiling (measured minutes apart at most), where the run has
    rounds; else the one run's."""
    rounds = list(zip(app.get("rounds_rps", []), ceiling.get("rounds_rps", []), strict=True))
    if rounds:
        return float(statistics.median(page / top for page, top in rounds))
    return float(app["rps"] / ceiling["rps"])


def table_lines(table: list[dict[str, Any]]) -> list[str]:
    """The table as printed: a head line, then a line per row."""

    def figure(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    return [HEAD] + [
        f"{row['route']:<32} {row['app_rps']:>9.0f} {row['ceiling_rps']:>8.0f}"
        f" {row['ratio']:>6.2f} {figure(row['tutorial_rps'], '.0f'):>9}"
        f" {row['app_p99_ms']:>8.1f} {figure(row['tutorial_p99_ms'], '.1f'):>8}"
        for row in table
    ]


def page_checks(
    table: list[dict[str, Any]], targets: dict[str, float]
) -> list[tuple[str, bool, str]]:
    """(target, met, measured): each row's share of its ceiling against ``targets``, and
    its p99 below the tutorial's where the tutorial was measured."""
    checks = []
    for row in table:
        share = targets.get(row["name"])
        if share is not None:
            checks.append((
                f"{row['route']} >= {share:.2f} of its ceiling",
                row["ratio"] >= share, f"{row['ratio']:.2f}",
            ))  # fmt: skip
        if row["tutorial_p99_ms"] is not None:
            checks.append((
                f"{row['route']} p99 below the tutorial's",
                row["app_p99_ms"] < row["tutorial_p99_ms"],
                f"{row['app_p99_ms']:.1f} ms against {row['tutorial_p99_ms']:.1f} ms",
            ))  # fmt: skip
    return checks
