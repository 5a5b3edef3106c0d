"""The chaos run's model check: each guarantee it checks fails on the record that breaks it."""

from __future__ import annotations

from dataclasses import replace

from chaos.model import (Ack, Call, Fault, Mutation, Observer, Poke, Recorded, acks_of, check, take_over,
                         unavailability)

STATE = {"ws": {"a": "a2", "cas": "c1"}}


def clean() -> Recorded:
    """Three writes: a (v1), cas via compare-and-set from 0 (v2), a again (v3); all observed."""
    return Recorded(
        type="t",
        acks=[Ack(0, "ws", "a", "a1", 1, 10.0), Ack(1, "ws", "cas", "c1", 2, 11.0, if_version=0),
              Ack(0, "ws", "a", "a2", 3, 12.0)],
        unknown_writes=0,
        history=[Mutation(1, "r1", "ws", {"a": "a1"}), Mutation(2, "r2", "ws", {"cas": "c1"}),
                 Mutation(3, "r3", "ws", {"a": "a2"})],
        markers=[1, 2, 3],
        pokes=[Poke(2, {"t": ["ws"]}), Poke(3, {"t": ["ws"]})],
        service_state=STATE,
        observers=[Observer("subscriber-0", 3, STATE), Observer("view-0", 3, STATE)],
        faults=[Fault("kill-projector", "serve-a", 10.5, 13.0)],
    )


def violations(rec: Recorded) -> list[str]:
    return check(rec).violations


def test_a_clean_run_has_no_violation_and_reports_its_figures():
    figures = check(clean())
    assert figures.ok, figures.violations
    rows = dict(figures.rows)
    assert rows["acknowledged writes lost"] == "0"
    assert rows["writes acknowledged"] == "3 (1 compare-and-set, 0 more conflicted)"
    assert rows["observers equal to the service"] == "2 / 2"
    assert figures.table()[-1] == "OK: every guarantee held"


def test_an_acknowledged_write_missing_from_the_history_is_lost():
    rec = clean()
    rec.history[2] = Mutation(3, "r3", "ws", {"a": "other"})
    assert any("1 acknowledged writes are not in the history" in v for v in violations(rec))
    assert dict(check(rec).rows)["acknowledged writes lost"] == "1"


def test_a_duplicate_or_skipped_version_in_history_or_log_is_a_violation():
    rec = clean()
    rec.markers = [1, 2, 2, 3]
    rec.history = [rec.history[0], rec.history[2]]
    found = violations(rec)
    assert any(v.startswith("history versions are not 1..2") for v in found)
    assert any(v.startswith("log commit marker versions are not 1..4 in order (1 duplicates") for v in found)


def test_a_request_applied_twice_and_a_version_acknowledged_twice_are_violations():
    rec = clean()
    rec.history[2] = replace(rec.history[2], request_id="r1")
    rec.acks.append(Ack(2, "ws", "b", "b1", 3, 12.5))
    found = violations(rec)
    assert any("requests applied twice" in v for v in found)
    assert any("versions acknowledged to two writes" in v for v in found)


def test_two_compare_and_set_successes_from_the_same_base_are_a_lost_update():
    rec = clean()
    rec.acks.append(Ack(2, "ws", "cas", "c2", 4, 13.0, if_version=0))
    rec.history.append(Mutation(4, "r4", "ws", {"cas": "c2"}))
    rec.markers.append(4)
    rec.pokes.append(Poke(4, {"t": ["ws"]}))
    assert any("compare-and-set successes share a base version" in v for v in violations(rec))


def test_pokes_must_increase_cover_every_mutation_and_end_at_the_last_version():
    rec = clean()
    rec.pokes = [Poke(2, {"t": ["other"]}), Poke(2, {"t": ["ws"]})]
    found = violations(rec)
    assert any("poke versions do not strictly increase" in v for v in found)
    assert any("the last poke is at version 2" in v for v in found)
    assert any("2 mutations are not announced" in v for v in found)


def test_an_observer_with_another_final_state_or_calls_out_of_order_is_a_violation():
    rec = clean()
    rec.observers = [Observer("subscriber-0", 3, {"ws": {"a": "a1", "cas": "c1"}}),
                     Observer("view-0", 3, STATE, out_of_order=2)]
    found = violations(rec)
    assert any(v.startswith("subscriber-0 (version 3) ends with a state other than the service's") for v in found)
    assert "view-0: 2 handler calls went back in version" in found


def test_stale_and_unanswered_reads_and_a_failed_verify_are_violations():
    rec = replace(clean(), reads=10, stale_reads=1, reads_unanswered=2, verify_ok=False,
                  verify_summary="FAILED: 1 differences")
    found = violations(rec)
    assert "1 min_version reads returned older data than acknowledged" in found
    assert "2 reads got no response within the client deadline" in found
    assert "verify --scratch: FAILED: 1 differences" in found


def test_unavailability_is_the_longest_stretch_without_an_ack_from_the_fault_on():
    fault = Fault("kill-broker-any", "node 1", 100.0, 120.0)
    assert unavailability(fault, [99.0, 100.5, 107.5, 108.0, 112.0, 116.0, 119.0, 121.0]) == 7.0
    assert unavailability(fault, [130.0]) == 20.0, "no ack in the round: the whole round was unavailable"


def calls() -> list[Call]:
    """The clean run's three writes as recorded calls, and reads around them."""
    return [Call(0, "write", "ws", "a", "a1", 1, 9.5, 10.0), Call(1, "read", "ws", "cas", None, 0, 10.1, 10.2),
            Call(1, "cas", "ws", "cas", "c1", 2, 10.3, 11.0, base=0), Call(0, "write", "ws", "a", "a2", 3, 11.5, 12.0),
            Call(2, "read", "ws", "a", "a2", 3, 12.1, 12.4), Call(2, "read", "ws", "cas", "c1", 2, 12.5, 12.6)]


def test_recorded_calls_give_the_acknowledged_writes_and_a_linearizable_run_passes():
    assert acks_of(calls()) == clean().acks
    rec = replace(clean(), calls=calls())
    figures = check(rec)
    assert figures.ok, figures.violations
    assert dict(figures.rows)["calls checked for linearizability"] == "6 on 2 keys, 0 keys not linearizable"


def test_a_plain_read_of_an_overwritten_value_is_a_linearizability_violation():
    rec = replace(clean(), calls=[*calls(), Call(3, "read", "ws", "a", "a1", 1, 12.7, 12.8)])
    assert "1 keys have a history of reads and writes that is not linearizable, e.g. ws/a" in violations(rec)


def test_an_unanswered_write_is_neither_acknowledged_nor_a_violation():
    unanswered = Call(0, "write", "ws", "a", "a9", None, 12.7, None)
    rec = replace(clean(), calls=[*calls(), unanswered])
    assert acks_of(rec.calls) == clean().acks
    assert check(rec).ok


def test_reads_unavailability_is_reported_per_fault_kind():
    rec = replace(clean(), calls=calls())
    row = dict(check(rec).rows)["  kill-projector"]
    assert row == "1, unavailable p50 / max: writes 1.0 / 1.0 s, reads 1.9 / 1.9 s"


def test_a_take_over_is_the_first_writer_activation_from_the_fault_on():
    activations = [(5.0, 1.0), (14.0, 0.3), (12.5, 0.2)]
    assert take_over(activations, 10.0) == {"writer active again": 2.5, "writer activation took": 0.2}
    assert take_over(activations, 20.0) == {}


def test_phases_are_reported_per_fault_kind_with_p50_and_max():
    rec = clean()
    rec.faults = [Fault("pause-broker-15s", "node 1", 10.5, 11.0, (("log leader moved", 3.0),)),
                  Fault("pause-broker-15s", "node 2", 11.0, 13.0, (("log leader moved", 5.0),
                                                                  ("writer active again", 1.0)))]
    rows = dict(check(rec).rows)
    assert rows["    pause-broker-15s: log leader moved"] == "p50 4.0 s, max 5.0 s (2 rounds)"
    assert rows["    pause-broker-15s: writer active again"] == "p50 1.0 s, max 1.0 s (1 rounds)"
