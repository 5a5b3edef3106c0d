"""The fleet scenario's rows, from what a run measured (:class:`bench.fleet_run.FleetMeasure`), with etcd's
watchers beside them when ``--peer etcd`` ran them too.

The goals are issue 19's, for N subscribers on their own connections: at most 1 writer request per
write; idle, the broker and the subscribers' processes each at most 10 % of a core per 1,000
subscribers (pro rata for other N); write -> every handler p99 at most 1 s, and at most 2 × etcd's
write -> every watcher p99 in the same run.

Example::

    rows = fleet_rows(measured, etcd_measured, partitions=400)
"""

from __future__ import annotations

import math
from collections.abc import Callable

from bench.fleet_run import FleetMeasure, busy_label, machine_cores
from bench.profiling import profile_rows
from bench.report import Goal, Row, percentile

IDLE_GOAL_PCT_PER_1000 = 10.0  # % of a core per 1,000 idle subscribers, for the broker and for their processes


def _ms(samples: list[float], q: float) -> float | None:
    value = percentile(samples, q)
    return None if math.isnan(value) else value


def _per(value: float, members: int) -> str:
    return f"{1000 * value / members:.1f} % per 1,000"


def _idle_cost(measure: FleetMeasure, server: str) -> float:
    """A server's idle CPU with the fleet, less its own idle CPU before the fleet started."""
    return measure.idle.get(f"{server}_pct", 0.0) - measure.baseline.get(f"{server}_pct", 0.0)


def _setup(ec: FleetMeasure, partitions: int) -> str:
    load = ec.load_before
    label = busy_label(load[0], machine_cores(), ec.idle.get("other_pct", 0.0)) or "quiet machine"
    return (f"{label}; load average before {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
            f"{ec.members} ConfigSubscribers, each with its own Kafka connections, over {ec.processes} processes; "
            f"{ec.writes} puts, {partitions} response partitions")


def _peer(etcd: FleetMeasure | None, text: Callable[[FleetMeasure], str]) -> str:
    """The etcd column: ``text(etcd)`` when etcd's watchers ran, else empty."""
    return text(etcd) if etcd is not None else ""


def latency_rows(ec: FleetMeasure, etcd: FleetMeasure | None) -> list[Row]:
    n, out = ec.members, ec.outcome
    valid = out.incomplete == 0
    missing = (f"; {out.incomplete} of {ec.writes} writes not seen by every subscriber, "
               f"{100 * out.missing_share:.1f} % of the handler calls not made by the end of the settle time"
               if out.incomplete else "")
    p50, p99 = _ms(out.latencies_ms, 50), _ms(out.latencies_ms, 99)
    rows = [
        Row("fleet", f"write → every one of {n} handlers called, p50", p50, "ms", valid=valid,
            etcd=_peer(etcd, lambda e: f"every watcher p50 {_fmt(_ms(e.outcome.latencies_ms, 50))} ms"),
            note="from sending the put to the last handler call" + missing),
        Row("fleet", f"write → every one of {n} handlers called, p99", p99, "ms", Goal("<=", 1000), valid=valid,
            etcd=_peer(etcd, lambda e: f"every watcher p99 {_fmt(_ms(e.outcome.latencies_ms, 99))} ms"),
            extra={"latencies_ms": out.latencies_ms}),
    ]
    if etcd is not None:
        theirs = _ms(etcd.outcome.latencies_ms, 99)
        ratio = p99 / theirs if p99 is not None and theirs else None
        rows.append(Row("fleet", f"write → every handler p99 / etcd's write → every watcher p99, N = {n}", ratio,
                        "×", Goal("<=", 2), valid=valid and etcd.outcome.incomplete == 0,
                        note=f"etcd {_fmt(theirs)} ms, {n} watchers with a client each over {etcd.processes} "
                             f"processes; {etcd.outcome.incomplete} writes not seen by every watcher"))
    return rows


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def cost_rows(ec: FleetMeasure, etcd: FleetMeasure | None) -> list[Row]:
    n = ec.members
    goal = Goal("<=", IDLE_GOAL_PCT_PER_1000 * n / 1000)
    broker = _idle_cost(ec, "broker")
    return [
        Row("fleet", f"broker CPU, {n} idle subscribers (over the broker's own idle)", broker, "% core", goal,
            etcd=_peer(etcd, lambda e: f"etcd {_fmt(e.idle.get('etcd_pct'))} % with {n} idle watchers, "
                                       f"{_fmt(e.baseline.get('etcd_pct'))} % without"),
            note=f"{_per(broker, n)}; the broker {ec.idle.get('broker_pct', 0):.1f} % with them, "
                 f"{ec.baseline.get('broker_pct', 0):.1f} % without them (the lower of a window before they "
                 f"started and one after they stopped); goal pro rata of "
                 f"{IDLE_GOAL_PCT_PER_1000:g} % per 1,000", extra={"idle": ec.idle, "baseline": ec.baseline,
                   **({"etcd_idle": etcd.idle, "etcd_baseline": etcd.baseline} if etcd else {})}),
        Row("fleet", f"the {n} subscribers' processes' CPU, idle", ec.idle["members_pct"], "% core", goal,
            etcd=_peer(etcd, lambda e: f"watchers' processes {_fmt(e.idle['members_pct'])} %"),
            note=f"{_per(ec.idle['members_pct'], n)}, over {ec.processes} processes; "
                 f"the service {ec.idle.get('service_pct', 0):.1f} % ({ec.baseline.get('service_pct', 0):.1f} % "
                 "before the fleet started)"),
        Row("fleet", f"CPU during writes ({ec.writes} puts, {n} subscribers): broker", ec.busy.get("broker_pct"),
            "% core", etcd=_peer(etcd, lambda e: f"etcd {_fmt(e.busy.get('etcd_pct'))} %, watchers "
                                             f"{_fmt(e.busy['members_pct'])} %"),
            note=f"subscribers' processes {ec.busy['members_pct']:.1f} %, the service "
                 f"{ec.busy.get('service_pct', 0):.1f} %, other processes {ec.busy['other_pct']:.0f} %, "
                 f"machine {ec.busy['machine_busy_pct']:.0f} % of {100 * machine_cores()} %",
            extra={"busy": ec.busy, **({"etcd_busy": etcd.busy} if etcd else {})}),
        Row("fleet", f"resident memory per subscriber, {n} subscribers", ec.rss_per_member_mib, "MiB",
            etcd=_peer(etcd, lambda e: f"{_fmt(e.rss_per_member_mib)} MiB per watcher"),
            note=f"the {ec.processes} processes together {ec.rss_mib:,.0f} MiB; "
                 f"{ec.marginal_rss_per_member_kib:,.0f} KiB per subscriber over the processes' "
                 f"{ec.rss_base_mib / ec.processes:.0f} MiB each before their subscribers started"
                 + (f"; etcd's watchers {etcd.marginal_rss_per_member_kib:,.0f} KiB each over their "
                    "processes' base" if etcd else "")),
    ]


def start_rows(ec: FleetMeasure, etcd: FleetMeasure | None) -> list[Row]:
    n, start = ec.members, ec.start
    before, during = ec.probe_before_ms, ec.probe_during_ms
    never = f"; {start.never} never got their first maps" if start.never else ""
    never += f"; {start.failures} subscriber starts failed and were started again" if start.failures else ""
    return [
        Row("fleet", f"start of {n} subscribers at once, until every one has its first maps",
            None if math.isnan(start.all_s) else start.all_s, "s", valid=not start.never,
            etcd=_peer(etcd, lambda e: f"{_fmt(e.start.all_s)} s for {n} watchers"),
            note=f"median subscriber {start.p50_s:.1f} s; from spawning the {ec.processes} processes, of which "
                 f"{start.imports_s:.1f} s until the last had imported eventconfig; broker {ec.start_cpu.get('broker_pct', 0):.0f} %, service "
                 f"{ec.start_cpu.get('service_pct', 0):.0f} % meanwhile{never}"),
        Row("fleet", f"another client's get p99 while {n} subscribers start", _ms(during, 99), "ms",
            valid=not ec.probe_errors,
            note=f"{len(during)} sequential gets, p50 {_fmt(_ms(during, 50))} ms, max {_fmt(max(during, default=0))} "
                 f"ms, {ec.probe_errors} failed; before the start: p50 {_fmt(_ms(before, 50))} ms, "
                 f"p99 {_fmt(_ms(before, 99))} ms ({len(before)} gets)"),
    ]


def fleet_rows(ec: FleetMeasure, etcd: FleetMeasure | None, partitions: int, etcd_error: str = "") -> list[Row]:
    """Every row of a fleet run of N subscribers (and etcd's watchers, if measured)."""
    requests = Row("fleet", f"writer requests per write, {ec.members} subscribers", ec.requests_per_write,
                   "requests", Goal("<=", 1), note=_setup(ec, partitions) + "; records on the request topic "
                   "during the writes, the writes included", valid=ec.outcome.incomplete == 0,
                   etcd=_peer(etcd, lambda e: "1 (a put)"))
    reads = Row("fleet", f"response records read per write, {ec.members} subscribers",
                ec.outcome.deliveries_per_write, "records", note="all clients' consumers together, the writer's "
                "included", valid=ec.outcome.incomplete == 0)
    rows = [requests, reads, *latency_rows(ec, etcd), *cost_rows(ec, etcd), *start_rows(ec, etcd),
            *profile_rows(ec.profiles, {**ec.busy, "clients_pct": ec.busy["members_pct"]}, ec.processes)]
    if etcd_error:
        rows.append(Row("fleet", "etcd watchers", None, "", note=etcd_error, valid=False))
    return rows
