"""The fleet scenario's pure parts: how worker reports combine, how members spread over processes,
and the rows (goals pro rata, the etcd column, the busy-machine label)."""

from __future__ import annotations

import math

import pytest

from bench.fleet import FleetReport, fleet_outcome, start_outcome
from bench.fleet_rows import fleet_rows
from bench.fleet_run import FleetMeasure, busy_label, quietest, split_cpu, worker_shares
from bench.report import Row


def test_each_write_is_timed_to_the_last_member_that_saw_it_across_workers() -> None:
    sent = {10: 100.0, 11: 101.0}
    reports = [FleetReport(2, responses_read=3, handled={"10": [100.05, 100.20], "11": [101.01, 101.02]}),
               FleetReport(1, responses_read=1, handled={"10": [100.10], "11": [101.30]})]

    outcome = fleet_outcome(sent, reports, writer_reads=2)

    assert outcome.latencies_ms == pytest.approx([200.0, 300.0])
    assert (outcome.incomplete, outcome.missing_share) == (0, 0.0)
    assert outcome.deliveries_per_write == 3.0  # (2 + 3 + 1) records over 2 writes


def test_a_write_some_member_never_saw_is_incomplete_and_its_missing_calls_are_counted() -> None:
    sent = {1: 0.0, 2: 1.0}
    reports = [FleetReport(2, handled={"1": [0.1, 0.2], "2": [1.1]})]

    outcome = fleet_outcome(sent, reports, writer_reads=0)

    assert outcome.latencies_ms == pytest.approx([200.0])
    assert outcome.incomplete == 1
    assert outcome.missing_share == pytest.approx(0.25)  # 1 of 4 (write, member) pairs


def test_the_start_lasts_until_the_last_member_has_its_first_state() -> None:
    reports = [FleetReport(2, first=[12.0, 14.0], began=11.0), FleetReport(1, first=[13.0], began=11.5)]

    start = start_outcome(10.0, reports)

    assert (start.all_s, start.p50_s, start.never, start.imports_s) == (4.0, 3.0, 0, 1.5)


def test_a_member_that_never_started_leaves_the_start_unmeasured() -> None:
    start = start_outcome(10.0, [FleetReport(2, first=[12.0, 0.0])])
    assert math.isnan(start.all_s) and start.never == 1


def test_failed_member_starts_are_summed_over_the_workers() -> None:
    reports = [FleetReport(1, first=[1.0], start_failures=2), FleetReport(1, first=[1.0], start_failures=1)]
    assert start_outcome(0.0, reports).failures == 3


@pytest.mark.parametrize(("members", "per_process", "shares"),
                         [(1000, 125, [125] * 8), (200, 125, [100, 100]), (201, 100, [67, 67, 67]), (1, 125, [1])])
def test_members_fill_as_few_processes_as_hold_them_evenly(members: int, per_process: int,
                                                           shares: list[int]) -> None:
    assert worker_shares(members, per_process) == shares


def test_the_workers_cpu_is_summed_and_the_rest_of_the_machine_is_other() -> None:
    used = split_cpu({"machine_busy_pct": 150.0, "broker_pct": 20.0, "worker0_pct": 5.0, "worker1_pct": 7.0})
    assert used == {"machine_busy_pct": 150.0, "broker_pct": 20.0, "members_pct": 12.0, "other_pct": 118.0}


def test_a_servers_own_idle_is_the_quietest_of_its_windows() -> None:
    assert quietest({"broker_pct": 18.0, "service_pct": 1.0}, {"broker_pct": 6.0, "service_pct": 2.0}) == {
        "broker_pct": 6.0, "service_pct": 1.0}


def test_a_machine_is_labelled_busy_by_its_load_or_by_other_processes() -> None:
    assert busy_label(0.5, 2, 5.0) == ""
    assert busy_label(3.0, 2, 5.0).startswith("busy machine (load average 3.0 on 2 cores")
    assert busy_label(0.5, 2, 40.0).startswith("busy machine")


def _measure(members: int, latencies: list[float], idle: dict[str, float], baseline: dict[str, float],
             requests: float = 1.0) -> FleetMeasure:
    handled = {str(v): [v + lat / 1e3] * members for v, lat in enumerate(latencies)}
    reports = [FleetReport(members, handled=handled, first=[1.0] * members)]
    outcome = fleet_outcome({v: float(v) for v in range(len(latencies))}, reports, 0)
    return FleetMeasure(members, 2, baseline, start_outcome(0.0, reports), {}, idle,
                        {"machine_busy_pct": 100.0, "members_pct": 4.0, "other_pct": 10.0},
                        rss_mib=200.0, rss_base_mib=80.0, outcome=outcome, writes=len(latencies),
                        requests_per_write=requests, load_before=(0.2, 0.2, 0.2),
                        probe_before_ms=[2.0], probe_during_ms=[3.0, 5.0])


def _row(rows: list[Row], starts: str) -> Row:
    [row] = [r for r in rows if r.metric.startswith(starts)]
    return row


def test_fleet_rows_judge_the_fleets_cost_over_the_brokers_own_idle_pro_rata() -> None:
    ec = _measure(200, [100.0, 300.0], idle={"broker_pct": 5.0, "members_pct": 1.0, "other_pct": 0.0},
                  baseline={"broker_pct": 4.0})

    rows = fleet_rows(ec, None, partitions=400)

    broker = _row(rows, "broker CPU, 200 idle")
    assert broker.value == pytest.approx(1.0)
    assert broker.goal is not None and broker.goal.threshold == pytest.approx(2.0)  # 10 % per 1,000
    assert broker.verdict == "PASS" and broker.etcd == ""
    assert _row(rows, "writer requests per write").verdict == "PASS"
    assert _row(rows, "resident memory per subscriber").value == pytest.approx(1.0)  # 200 MiB / 200
    assert "quiet machine" in _row(rows, "writer requests per write").note


def test_with_etcd_the_peer_column_is_filled_and_the_p99_ratio_is_judged() -> None:
    idle = {"broker_pct": 1.0, "members_pct": 1.0, "other_pct": 0.0}
    ec = _measure(200, [100.0, 300.0], idle=idle, baseline={})
    etcd = _measure(200, [10.0, 100.0], idle={"etcd_pct": 0.5, "members_pct": 0.2, "other_pct": 0.0},
                    baseline={"etcd_pct": 0.1})

    rows = fleet_rows(ec, etcd, partitions=400)

    ratio = _row(rows, "write → every handler p99 / etcd's")
    assert ratio.value == pytest.approx(3.0) and ratio.verdict == "MISS"
    assert _row(rows, "broker CPU, 200 idle").etcd == "etcd 0.5 % with 200 idle watchers, 0.1 % without"
