"""The states of an exclusive role and the transitions between them (pure: no Kafka, no event loop).

::

    STANDBY --assigned--> CATCHING_UP --resumed--> ACTIVE
       ^                     |   |                   |
       |                     |   +--revoked----------+--revoked / stopping--> STANDBY
       |                     v                       v
       +-- (after retry_s, still assigned; ---- FAILING <--a commit or a take-over failed--+
       |    if fenced, proven by a rebalance)
       +-- (after refuse_s, still assigned) --- REFUSING <--the take-over found state it must not build on

A member is in STANDBY until the group assigns it the role's partition; it then catches up (fences
the previous holder, rebuilds its state, finds where to resume) and becomes ACTIVE. A failure while
catching up or active moves it to FAILING, where it stays for ``retry_s`` before it may take the role
again. A member that was *fenced* must first prove it still holds the role before it fences in turn:
another process took the role, so this one waits for a rebalance of the group that completes after
the fencing and still assigns it the partition (a stale member learns it lost the role instead), or,
when none comes, for ``fenced_wait_s`` (the fencer may have died). That ends fencing wars. A take-over
that finds committed state it must not build on (:class:`RoleRefused`: the writer's history does not
end at the log's last commit marker) moves it to REFUSING instead: only an operator can fix that, so
the check is repeated every ``refuse_s`` until it passes. Whether
the member holds the partition is asked on every step, never remembered, so a failure while still
assigned always ends in a retry, never in a role nobody holds.

Example::

    machine = RoleMachine(retry_s=1.0)
    if machine.next_step(assigned=True, now=time.monotonic()) is Step.TAKE_OVER:
        machine.catching_up(); ...; machine.activated()
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from eventconfig.errors import EventConfigError


class State(Enum):
    STANDBY = "standby"  # a member of the role's group without the role's partition, or stepped down
    CATCHING_UP = "catching up"  # assigned: fencing the previous holder, rebuilding state, finding the resume point
    ACTIVE = "active"  # handling input and committing output
    FAILING = "failing"  # a take-over or a commit failed: producer stopped, waiting out the back-off
    REFUSING = "refusing"  # the take-over refused the committed state (RoleRefused): checked again every refuse_s


class Step(Enum):
    TAKE_OVER = "take over"
    WORK = "work"
    STEP_DOWN = "step down"
    IDLE = "idle"


class IllegalTransition(EventConfigError):
    """A role was asked for a transition its state does not allow (a bug)."""


class RoleRefused(EventConfigError):
    """A take-over found committed state the role must not build on; the message says what and why."""


@dataclass
class RoleMachine:
    """The state of one role in one process; each transition is one method."""

    retry_s: float = 1.0
    fenced_wait_s: float = 6.0
    refuse_s: float = 5.0
    state: State = State.STANDBY
    retry_at: float = 0.0  # monotonic time before which no take-over is tried
    proof_after: int | None = None  # fenced: a rebalance completed after this many proves the role is ours
    proof_deadline: float = 0.0  # fenced: without a proof, take over again after this monotonic time

    def next_step(self, assigned: bool, now: float, rebalances: int = 0) -> Step:
        """What the role's loop does next, given whether the group assigns this member the partition (as
        of the last of ``rebalances`` completed rebalances)."""
        if self.state is State.ACTIVE:
            return Step.WORK if assigned else Step.STEP_DOWN
        if assigned and self.state in (State.STANDBY, State.FAILING, State.REFUSING) and now >= self.retry_at \
                and self._proven(now, rebalances):
            return Step.TAKE_OVER
        return Step.IDLE

    def _proven(self, now: float, rebalances: int) -> bool:
        return self.proof_after is None or rebalances > self.proof_after or now >= self.proof_deadline

    def catching_up(self) -> None:
        self._move({State.STANDBY, State.FAILING, State.REFUSING}, State.CATCHING_UP)
        self.proof_after = None

    def activated(self) -> None:
        self._move({State.CATCHING_UP}, State.ACTIVE)

    def failed(self, now: float, fenced_after: int | None = None) -> None:
        """A take-over or a commit failed (or the loop met a Kafka error): retry after ``retry_s``. When
        another process fenced this one (``fenced_after``: the rebalances completed so far), retry only
        once a later rebalance proves the role is still ours, or after ``fenced_wait_s``."""
        self._move(set(State), State.FAILING)
        self.retry_at = now + self.retry_s
        if fenced_after is not None:
            self.proof_after, self.proof_deadline = fenced_after, now + self.fenced_wait_s

    def refused(self, now: float) -> None:
        """The take-over refused the committed state: check again after ``refuse_s``."""
        self._move({State.CATCHING_UP}, State.REFUSING)
        self.retry_at = now + self.refuse_s

    def stepped_down(self) -> None:
        """The partition was revoked or the process stops. A failing or refusing role keeps its back-off."""
        if self.state not in (State.FAILING, State.REFUSING):
            self._move({State.STANDBY, State.CATCHING_UP, State.ACTIVE}, State.STANDBY)

    def _move(self, sources: set[State], target: State) -> None:
        if self.state not in sources:
            raise IllegalTransition(f"{self.state.value} -> {target.value}")
        self.state = target
