"""The exclusive roles' state machine (eventconfig.kafka.role_state), without a broker or an event loop."""

from __future__ import annotations

import pytest

from eventconfig.kafka.role_state import IllegalTransition, RoleMachine, State, Step


def active() -> RoleMachine:
    machine = RoleMachine(retry_s=1.0)
    machine.catching_up()
    machine.activated()
    return machine


def test_a_member_takes_the_role_only_when_assigned_the_partition() -> None:
    machine = RoleMachine()
    assert machine.next_step(assigned=False, now=0.0) is Step.IDLE
    assert machine.next_step(assigned=True, now=0.0) is Step.TAKE_OVER
    machine.catching_up()
    assert machine.state is State.CATCHING_UP
    assert machine.next_step(assigned=True, now=0.0) is Step.IDLE, "no second take-over while catching up"
    machine.activated()
    assert machine.state is State.ACTIVE and machine.next_step(assigned=True, now=0.0) is Step.WORK


def test_an_active_member_that_lost_the_partition_steps_down_and_can_take_it_again() -> None:
    machine = active()
    assert machine.next_step(assigned=False, now=5.0) is Step.STEP_DOWN
    machine.stepped_down()
    assert machine.state is State.STANDBY
    assert machine.next_step(assigned=True, now=5.0) is Step.TAKE_OVER


@pytest.mark.parametrize("where", ["catching up", "active"])
def test_a_failure_waits_out_the_back_off_before_the_role_is_taken_again(where: str) -> None:
    machine = RoleMachine(retry_s=1.0)
    machine.catching_up()
    if where == "active":
        machine.activated()
    machine.failed(now=10.0)
    assert machine.state is State.FAILING
    assert machine.next_step(assigned=True, now=10.5) is Step.IDLE, "a stale member gets time to see a rebalance"
    assert machine.next_step(assigned=False, now=11.0) is Step.IDLE, "revoked meanwhile: it stays down"
    assert machine.next_step(assigned=True, now=11.0) is Step.TAKE_OVER, "still assigned: it retries"


def test_stepping_down_while_failing_keeps_the_back_off() -> None:
    machine = active()
    machine.failed(now=10.0)
    machine.stepped_down()
    assert machine.state is State.FAILING
    assert machine.next_step(assigned=True, now=10.5) is Step.IDLE


def test_a_failure_in_the_loop_of_a_standby_also_backs_off() -> None:
    machine = RoleMachine(retry_s=2.0)
    machine.failed(now=0.0)
    assert machine.next_step(assigned=True, now=1.0) is Step.IDLE
    assert machine.next_step(assigned=True, now=2.0) is Step.TAKE_OVER


@pytest.mark.parametrize("transition", ["activated", "catching_up"])
def test_transitions_the_state_does_not_allow_are_refused(transition: str) -> None:
    machine = RoleMachine() if transition == "activated" else active()
    with pytest.raises(IllegalTransition):
        getattr(machine, transition)()


def test_a_fenced_member_takes_the_role_again_only_after_a_rebalance_proves_it_still_holds_it() -> None:
    machine = RoleMachine(retry_s=1.0, fenced_wait_s=6.0)
    machine.catching_up()
    machine.activated()
    machine.failed(now=10.0, fenced_after=3)
    assert machine.next_step(assigned=True, now=12.0, rebalances=3) is Step.IDLE, "no fencing war"
    assert machine.next_step(assigned=True, now=12.0, rebalances=4) is Step.TAKE_OVER, "a later rebalance proves it"
    assert machine.next_step(assigned=False, now=12.0, rebalances=4) is Step.IDLE, "or shows the role is gone"
    assert machine.next_step(assigned=True, now=16.0, rebalances=3) is Step.TAKE_OVER, "the fencer may have died"
    machine.catching_up()
    machine.failed(now=20.0)  # not fenced: no proof needed
    assert machine.next_step(assigned=True, now=21.0, rebalances=3) is Step.TAKE_OVER
