"""The chaos run's linearizability checker: known histories, and agreement with a brute-force search."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.linearizability import INITIAL, Op, State, check_history, linearizable, step


def w(value: str, start: float, end: float | None, version: int | None = None) -> Op:
    return Op("write", value, start, end, version=version)


def r(value: str | None, start: float, end: float, version: int | None = 0) -> Op:
    return Op("read", value, start, end, version=version)


def cas(value: str, base: int, start: float, end: float | None, version: int | None = None) -> Op:
    return Op("cas", value, start, end, version=version, base=base)


def test_a_sequential_history_of_writes_and_reads_is_linearizable():
    assert linearizable([r(None, 0, 1), w("a", 2, 3, 1), r("a", 4, 5, 1), w("b", 6, 7, 2), r("b", 8, 9, 2)])


def test_a_read_of_an_overwritten_value_after_the_overwrite_was_acknowledged_is_rejected():
    assert not linearizable([w("a", 0, 1, 1), w("b", 2, 3, 2), r("a", 4, 5, 1)])


def test_a_read_of_nothing_after_an_acknowledged_write_is_rejected():
    assert not linearizable([w("a", 0, 1, 1), r(None, 2, 3, 0)])


def test_a_read_of_a_value_nobody_wrote_is_rejected():
    assert not linearizable([w("a", 0, 1, 1), r("z", 2, 3, 1)])


def test_a_read_with_the_right_value_but_another_version_is_rejected():
    assert not linearizable([w("a", 0, 1, 1), r("a", 2, 3, 7)])


def test_a_read_concurrent_with_a_write_may_see_either_value():
    assert linearizable([w("a", 0, 1, 1), w("b", 2, 10, 2), r("a", 3, 4, 1)])
    assert linearizable([w("a", 0, 1, 1), w("b", 2, 10, 2), r("b", 3, 4, 2)])


def test_reads_that_see_a_concurrent_write_and_then_the_older_value_are_rejected():
    """The classic stale read: once one read returned the new value, a later read may not go back."""
    assert not linearizable([w("a", 0, 1, 1), w("b", 2, 10, 2), r("b", 3, 4, 2), r("a", 5, 6, 1)])


def test_reads_of_different_clients_in_the_wrong_order_are_rejected_even_when_each_overlaps_the_write():
    history = [w("a", 0, 1, 1), w("b", 2, 20, 2), r("b", 3, 5, 2), r("a", 6, 8, 1), r("b", 9, 10, 2)]
    assert not linearizable(history)


def test_versions_that_go_backwards_are_rejected():
    assert not linearizable([w("a", 0, 1, 5), w("b", 2, 3, 3)])
    assert linearizable([w("a", 0, 3, 5), w("b", 1, 2, 3)])  # concurrent: b may come first


def test_two_compare_and_set_successes_from_one_base_are_rejected():
    assert not linearizable([cas("a", 0, 0, 1, 1), cas("b", 0, 2, 3, 2)])
    assert not linearizable([cas("a", 0, 0, 5, 1), cas("b", 0, 1, 4, 2)])  # concurrent, too
    assert linearizable([cas("a", 0, 0, 1, 1), cas("b", 1, 2, 3, 2)])


def test_a_write_without_a_response_may_take_effect_late_or_never():
    assert linearizable([w("a", 0, 1, 1), w("b", 2, None), r("a", 3, 4, 1)])
    assert linearizable([w("a", 0, 1, 1), w("b", 2, None), r("b", 30, 31, None)])
    assert linearizable([w("a", 0, 1, 1), w("b", 2, None), r("a", 3, 4, 1), r("b", 30, 31, None)])


def test_a_write_without_a_response_cannot_take_effect_before_it_was_sent_nor_be_undone():
    assert not linearizable([w("a", 0, 1, 1), r("b", 2, 3, None), w("b", 4, None)])
    assert not linearizable([w("a", 0, 1, 1), w("b", 2, None), r("b", 3, 4, None), r("a", 5, 6, 1)])


def test_check_history_names_the_keys_whose_register_is_not_linearizable():
    good = [w("a", 0, 1, 1), r("a", 2, 3, 1)]
    bad = [w("a", 0, 1, 2), w("b", 2, 3, 3), r("a", 4, 5, 2)]
    assert check_history({"k1": good, "k2": bad, "k3": []}) == ["k2"]


def test_a_long_history_of_unique_values_is_checked_quickly():
    rng = random.Random(3)
    ops, now, version = [], 0.0, 0
    for i in range(3000):
        version += 1
        ops.append(w(f"v{i}", now, now + 0.5, version))
        ops.append(r(f"v{i}", now + rng.uniform(0.5, 1.0), now + 1.2, version))
        now += 1.0
    assert linearizable(ops)
    ops[-1] = r("v10", ops[-1].invoked, ops[-1].completed or 0, 11)
    assert not linearizable(ops)


# --- agreement with a brute-force search over every order --------------------------------------


def brute_force(ops: list[Op]) -> bool:
    """Try every subset of the unanswered operations and every order that respects real time."""
    ops = [op for op in ops if op.kind != "read" or op.completed is not None]
    answered = [op for op in ops if op.completed is not None]
    unanswered = [op for op in ops if op.completed is None]
    for size in range(len(unanswered) + 1):
        for taken in itertools.combinations(unanswered, size):
            for order in itertools.permutations([*answered, *taken]):
                if _respects_time(order) and _legal(order):
                    return True
    return False


def _respects_time(order: tuple[Op, ...]) -> bool:
    return not any(b.completed is not None and b.completed < a.invoked
                   for i, a in enumerate(order) for b in order[i + 1:])


def _legal(order: tuple[Op, ...]) -> bool:
    state: State | None = INITIAL
    for op in order:
        assert state is not None
        state = step(state, op)
        if state is None:
            return False
    return True


@st.composite
def small_histories(draw: st.DrawFn) -> list[Op]:
    """Up to six overlapping operations on small value and version domains, so that both answers occur."""
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, 12))
        end = start + draw(st.integers(1, 6))
        kind = draw(st.sampled_from(["write", "write", "read", "read", "cas"]))
        answered = kind == "read" or draw(st.booleans()) or draw(st.booleans())
        value = draw(st.sampled_from(["a", "b", "c", None] if kind == "read" else ["a", "b", "c"]))
        version = draw(st.integers(0, 3)) if answered else None
        if kind == "read" and value is None:
            version = 0
        base = draw(st.integers(0, 3)) if kind == "cas" else None
        ops.append(Op(kind, value, float(start), float(end) if answered else None, version=version, base=base))
    return ops


@settings(max_examples=400, deadline=None)
@given(small_histories())
def test_the_checker_agrees_with_a_search_over_every_order(ops):
    assert linearizable(ops) == brute_force(ops)


@st.composite
def linearizable_runs(draw: st.DrawFn) -> list[Op]:
    """A run built from a real register: each operation takes effect at a moment inside its interval."""
    register: State = INITIAL
    ops, version = [], 0
    for index in range(draw(st.integers(1, 40))):
        at = index * 10.0
        before, after = draw(st.floats(0, 25)), draw(st.floats(0, 25))
        if draw(st.booleans()):
            version += 1
            lost = draw(st.integers(0, 9)) == 0  # no response: it may still have taken effect
            if not lost or draw(st.booleans()):
                register = (f"v{index}", version)
            ops.append(w(f"v{index}", at - before, None if lost else at + after, None if lost else version))
        else:
            ops.append(r(register[0], at - before, at + after, register[1]))
    return ops


@settings(max_examples=200, deadline=None)
@given(linearizable_runs())
def test_every_run_of_a_real_register_is_accepted(ops):
    assert linearizable(ops)
