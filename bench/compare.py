"""Rows that compare: eventconfig against etcd measured in the same run, and against the floor.

The issue's goals are ratios, so they hold whatever the machine's speed that day: throughput against
etcd (put with 64 clients ≥ 1.0×, get with 64 clients ≥ 1.5×) and single-client latency against the
two-hop floor of our own architecture (get p50 ≤ 1.2× two hops, put p50 ≤ 1.2× two hops + commit).

Example::

    rows = add_peer(rows, etcd_runs) + floor_ratios(rows)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bench.cpu import cpu_per_request
from bench.report import Goal, Row, percentile
from bench.scenarios import LoadRun

# scenario -> the goal on eventconfig / etcd throughput, or None (shown, not judged)
THROUGHPUT_GOALS: dict[str, Goal | None] = {"put1": None, "get1": None, "put64": Goal(">=", 1.0),
                                            "get64": Goal(">=", 1.5)}


def _rate(run: LoadRun, seconds: float) -> float:
    return run.stats.completed / seconds


def _cpu_row(row: Row, run: LoadRun, seconds: float) -> Row | None:
    """Server CPU per request against etcd's, with the clients' beside it: the throughput rows compare
    client stacks too, since the clients share the machine."""
    ours_cpu = (row.extra or {}).get("cpu") or {}
    requests = (row.value or 0) * seconds
    ours = cpu_per_request(ours_cpu, ("service", "broker"), requests, seconds)
    theirs = cpu_per_request(run.cpu, ("etcd",), run.stats.completed, seconds)
    if ours is None or not theirs:
        return None
    clients = cpu_per_request(ours_cpu, ("clients",), requests, seconds)
    their_clients = cpu_per_request(run.cpu, ("clients",), run.stats.completed, seconds)
    client_note = (f"; clients {clients:.2f} ms vs etcd's clients {their_clients:.2f} ms"
                   if clients is not None and their_clients is not None else "")
    return Row(row.scenario, "server CPU per request / etcd's", ours / theirs, "×",
               note=f"ms of one core per request: service + broker {ours:.2f} ms, etcd {theirs:.2f} ms{client_note}")


def add_peer(rows: Sequence[Row], runs: Mapping[str, LoadRun], seconds: float) -> list[Row]:
    """Fill the peer column of the load rows and append eventconfig / etcd ratio rows per scenario:
    throughput, and the servers' CPU per request."""
    ratios: list[Row] = []
    for row in rows:
        run = runs.get(row.scenario)
        if run is None or row.value is None:
            continue
        etcd_rate, etcd_p50 = _rate(run, seconds), percentile(run.stats.latencies_ms, 50)
        if row.unit == "req/s":
            row.etcd = f"{etcd_rate:,.0f}/s, p50 {etcd_p50:.2f} ms"
            errors = f"; etcd had {run.stats.errors} errors ({run.stats.first_error})" if run.stats.errors else ""
            ratios.append(Row(row.scenario, f"{row.metric} / etcd's", row.value / etcd_rate if etcd_rate else None,
                              "×", THROUGHPUT_GOALS.get(row.scenario), note=f"etcd {etcd_rate:,.0f}/s{errors}",
                              valid=run.stats.errors == 0))
            cpu_row = _cpu_row(row, run, seconds)
            if cpu_row is not None:
                ratios.append(cpu_row)
        elif row.unit == "ms" and "p50" in row.metric:
            row.etcd = f"p50 {etcd_p50:.2f} ms"
    return [*rows, *ratios]


def floor_ratios(rows: Sequence[Row]) -> list[Row]:
    """Single-client p50s over the floor measured in the same run (needs the ``floor`` scenario)."""
    by_metric = {(r.scenario, r.metric): r.value for r in rows if r.value is not None}
    hop = by_metric.get(("floor", "two-hop round trip p50 (bare aiokafka)"))
    commit = by_metric.get(("floor", "transaction commit p50 (1 record, bare aiokafka)"))
    write = by_metric.get(("floor", "write round trip p50 (two hops, answer in a transaction)"))
    get_p50 = by_metric.get(("get1", "get round trip p50, 1 client"))
    put_p50 = by_metric.get(("put1", "put round trip p50, 1 client"))
    result = []
    if hop and get_p50:
        result.append(Row("get1", "get p50 / two-hop floor", get_p50 / hop, "×", Goal("<=", 1.2),
                          note=f"floor {hop:.2f} ms"))
    if hop and commit and put_p50:
        result.append(Row("put1", "put p50 / (two hops + commit) floor", put_p50 / (hop + commit), "×",
                          Goal("<=", 1.2), note=f"floor {hop:.2f} + {commit:.2f} ms"))
    if write and put_p50:
        result.append(Row("put1", "put p50 / write round trip floor", put_p50 / write, "×",
                          note=f"floor {write:.2f} ms: the hops and the commit overlap, so this floor is tighter"))
    return result
