"""The benchmark's comparison rows: ratios against etcd in the same run and against the floor."""

from __future__ import annotations

from bench.compare import add_peer, floor_ratios
from bench.load import LoadStats
from bench.report import Row
from bench.scenarios import LoadRun


def _run(completed: int, latencies: list[float], errors: int = 0) -> LoadRun:
    return LoadRun(LoadStats(completed, errors, latencies), 0.0, 1.0, {})


def test_peer_figures_fill_the_peer_column_and_add_judged_ratio_rows() -> None:
    rows = [Row("put64", "put throughput, 64 clients", 5000.0, "req/s"),
            Row("put1", "put round trip p50, 1 client", 4.0, "ms")]
    runs = {"put64": _run(40_000, [2.0] * 10), "put1": _run(10_000, [0.5] * 10)}

    result = add_peer(rows, runs, seconds=10.0)

    assert rows[0].etcd == "4,000/s, p50 2.00 ms"
    assert rows[1].etcd == "p50 0.50 ms"
    ratio = result[-1]
    assert (ratio.scenario, ratio.value, ratio.unit) == ("put64", 1.25, "×")
    assert ratio.verdict == "PASS"  # goal: put with 64 clients at least 1.0x etcd


def test_a_peer_with_errors_makes_its_ratio_row_a_miss() -> None:
    rows = [Row("get64", "get throughput, 64 clients", 9000.0, "req/s")]
    result = add_peer(rows, {"get64": _run(10, [1.0], errors=3)}, seconds=1.0)
    assert result[-1].verdict == "MISS"


def test_floor_ratios_compare_single_client_p50s_with_two_hops_and_a_commit() -> None:
    rows = [Row("floor", "two-hop round trip p50 (bare aiokafka)", 2.0, "ms"),
            Row("floor", "transaction commit p50 (1 record, bare aiokafka)", 2.0, "ms"),
            Row("get1", "get round trip p50, 1 client", 2.2, "ms"),
            Row("put1", "put round trip p50, 1 client", 8.0, "ms")]

    get_ratio, put_ratio = floor_ratios(rows)

    assert round(get_ratio.value or 0, 3) == 1.1 and get_ratio.verdict == "PASS"
    assert put_ratio.value == 2.0 and put_ratio.verdict == "MISS"


def test_no_floor_no_ratio_rows() -> None:
    assert floor_ratios([Row("get1", "get round trip p50, 1 client", 2.2, "ms")]) == []


def test_with_the_measured_write_round_trip_the_put_is_also_shown_against_it_without_a_goal() -> None:
    rows = [Row("floor", "write round trip p50 (two hops, answer in a transaction)", 4.0, "ms"),
            Row("put1", "put round trip p50, 1 client", 6.0, "ms")]

    (ratio,) = floor_ratios(rows)

    assert ratio.metric == "put p50 / write round trip floor" and ratio.value == 1.5 and ratio.goal is None


def test_the_servers_cpu_per_request_is_compared_with_etcds_with_the_clients_beside_it() -> None:
    ours = {"service_pct": 30.0, "broker_pct": 50.0, "clients_pct": 100.0}
    rows = [Row("get64", "get throughput, 64 clients", 1000.0, "req/s", extra={"cpu": ours})]
    etcd = LoadRun(LoadStats(40_000, 0, [1.0]), 0.0, 10.0, {"etcd_pct": 80.0, "clients_pct": 100.0})

    cpu = next(r for r in add_peer(rows, {"get64": etcd}, seconds=10.0) if r.metric.startswith("server CPU"))

    assert round(cpu.value or 0, 6) == 4.0 and cpu.goal is None  # 0.8 ms against 0.2 ms per request
    assert "service + broker 0.80 ms, etcd 0.20 ms; clients 1.00 ms vs etcd's clients 0.25 ms" in cpu.note
