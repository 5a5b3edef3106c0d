"""The model check of a chaos run: what was recorded against what the guarantees allow (pure).

Inputs are plain records: every call the clients made (the writes they saw acknowledged, their
reads, each with the times it was sent and answered), the history topic's mutations,
the log topic's commit markers, the notify topic's pokes, each observer's final state, the readers'
outcomes and the faults with their times. :func:`check` turns them into :class:`Figures`; every
guarantee that does not hold becomes a line in ``Figures.violations``.

Example::

    figures = check(Recorded(acks=[...], history=[...], markers=[...], pokes=[...], ...))
    print("\\n".join(figures.table())); assert figures.ok
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos import linearizability

Config = dict[str, dict[str, str]]  # workspace -> {key: value} of the run's one type


@dataclass(frozen=True)
class Ack:
    """A write a client saw acknowledged: its key, the unique value it wrote, and the version."""

    writer: int
    workspace: str
    key: str
    value: str
    version: int
    acked_at: float
    if_version: int | None = None


@dataclass(frozen=True)
class Call:
    """One client call as the load recorded it (wall clock); ``completed`` None: no response came.

    ``kind`` is ``write``, ``cas`` (``base``: the if_version) or ``read`` (``value`` None: absent).
    """

    client: int
    kind: str
    workspace: str
    key: str
    value: str | None
    version: int | None
    invoked: float
    completed: float | None
    base: int | None = None
    min_version: int | None = None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Call:
        return cls(**{f: raw.get(f) for f in cls.__dataclass_fields__})  # type: ignore[arg-type]

    def ack(self) -> Ack | None:
        """The acknowledged write this call is (None for a read or an unanswered write)."""
        if self.kind == "read" or self.completed is None or self.version is None or self.value is None:
            return None
        return Ack(self.client, self.workspace, self.key, self.value, self.version, self.completed, self.base)


def acks_of(calls: Iterable[Call]) -> list[Ack]:
    return [ack for call in calls if (ack := call.ack()) is not None]


@dataclass(frozen=True)
class Mutation:
    """One history record, reduced to what the model needs."""

    version: int
    request_id: str
    workspace: str
    changes: dict[str, str | None]  # key -> new value (None: deleted)


@dataclass(frozen=True)
class Poke:
    version: int
    changes: dict[str, list[str]]  # type -> workspaces


@dataclass(frozen=True)
class Fault:
    """One injected fault: what, on which target, and when (wall clock, seconds)."""

    kind: str
    target: str
    at: float
    until: float  # the end of its round: the next fault, or the end of the load
    # Seconds from the fault to each phase measured (a leadership moved, the writer active again ...),
    # and how long the writer's activation took.
    phases: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Observer:
    """The final state one subscriber or view handed its handlers, and ordering slips it saw."""

    name: str
    version: int
    state: Config
    out_of_order: int = 0


@dataclass
class Recorded:
    """Everything a chaos run collected, ready for :func:`check`."""

    type: str
    acks: list[Ack]
    unknown_writes: int
    history: list[Mutation]
    markers: list[int]  # versions of the log's commit markers, in log order
    pokes: list[Poke]
    service_state: Config
    observers: list[Observer]
    faults: list[Fault]
    calm: Fault | None = None  # the load before the first fault: the baseline of "unavailable"
    calls: list[Call] = field(default_factory=list)  # every recorded call, for the linearizability check
    cas_conflicts: int = 0
    reads: int = 0
    stale_reads: int = 0
    read_timeouts: int = 0  # answered "timeout" for an acknowledged version during a fault: unavailable
    reads_unanswered: int = 0  # no response within the client's deadline: a wait that never ended
    verify_ok: bool = True
    verify_summary: str = ""
    run_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class Figures:
    """The figures of a run and every violated guarantee."""

    rows: list[tuple[str, str]]
    violations: list[str]

    @property
    def ok(self) -> bool:
        return not self.violations

    def table(self) -> list[str]:
        width = max(len(name) for name, _ in self.rows)
        lines = [f"{name:<{width}}  {value}" for name, value in self.rows]
        lines += [f"VIOLATION: {v}" for v in self.violations]
        lines.append("OK: every guarantee held" if self.ok else f"FAILED: {len(self.violations)} violations")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "figures": dict(self.rows), "violations": self.violations}


def check(rec: Recorded) -> Figures:
    """Every model check of docs/design.md §9 over one run's records."""
    violations: list[str] = []
    history = {m.version: m for m in rec.history}
    lost = _lost_writes(rec.acks, history, violations)
    history_dups = _sequence([m.version for m in rec.history], "history", violations)
    marker_dups = _sequence(rec.markers, "log commit marker", violations)
    if rec.history and rec.markers and rec.markers[-1] != rec.history[-1].version:
        violations.append(f"the log ends at version {rec.markers[-1]}, the history at {rec.history[-1].version}")
    applied_twice = [rid for rid, n in Counter(m.request_id for m in rec.history).items() if n > 1]
    if applied_twice:
        violations.append(f"{len(applied_twice)} requests applied twice, e.g. {applied_twice[0]}")
    shared = [v for v, n in Counter(a.version for a in rec.acks).items() if n > 1]
    if shared:
        violations.append(f"{len(shared)} versions acknowledged to two writes, e.g. {shared[0]}")
    cas = [a for a in rec.acks if a.if_version is not None]
    _cas_chains(cas, violations)
    poke_dups = _pokes(rec.pokes, rec.history, rec.type, violations)
    _observers(rec.observers, rec.service_state, violations)
    if rec.stale_reads:
        violations.append(f"{rec.stale_reads} min_version reads returned older data than acknowledged")
    checked, not_linearizable = _linearizable(rec.calls, violations)
    if rec.reads_unanswered:
        violations.append(f"{rec.reads_unanswered} reads got no response within the client deadline")
    if not rec.verify_ok:
        violations.append(f"verify --scratch: {rec.verify_summary}")
    violations.extend(rec.notes)
    kinds = Counter(f.kind for f in rec.faults)
    write_times = [a.acked_at for a in rec.acks]
    read_times = [c.completed for c in rec.calls if c.kind == "read" and c.completed is not None]
    gaps = {f: unavailability(f, write_times) for f in rec.faults}
    read_gaps = {f: unavailability(f, read_times) for f in rec.faults}
    calm = [f"{unavailability(rec.calm, times) if rec.calm else 0.0:.1f} s" for times in (write_times, read_times)]
    rows = [
        ("rounds (faults)", str(len(rec.faults))),
        ("  longest gap before any fault (writes / reads)", " / ".join(calm)),
        *(row for kind, n in sorted(kinds.items()) for row in [
            (f"  {kind}", f"{n}, unavailable p50 / max: writes {_p50(gaps, kind):.1f} / {_max(gaps, kind):.1f} s, "
                          f"reads {_p50(read_gaps, kind):.1f} / {_max(read_gaps, kind):.1f} s"),
            *_phase_rows(rec.faults, kind)]),
        ("writes acknowledged", f"{len(rec.acks)} ({len(cas)} compare-and-set, {rec.cas_conflicts} more conflicted)"),
        ("writes with unknown outcome", f"{rec.unknown_writes} (client timeout; not counted as acknowledged)"),
        ("acknowledged writes lost", str(lost)),
        ("versions (history / log)", f"{len(rec.history)} / {len(rec.markers)}"),
        ("duplicate versions (history / log)", f"{history_dups} / {marker_dups}"),
        ("requests applied twice", str(len(applied_twice))),
        ("pokes (duplicates)", f"{len(rec.pokes)} ({poke_dups})"),
        ("observers equal to the service", f"{sum(_equal(o, rec.service_state) for o in rec.observers)}"
                                           f" / {len(rec.observers)}"),
        ("reads (stale min_version / unanswered)", f"{rec.reads} ({rec.stale_reads} / {rec.reads_unanswered})"),
        ("calls checked for linearizability", f"{checked} on {len(_by_key(rec.calls))} keys, "
                                              f"{not_linearizable} keys not linearizable"),
        ("  answered timeout (unavailable, not stale)", str(rec.read_timeouts)),
        ("verify --scratch", rec.verify_summary or ("clean" if rec.verify_ok else "FAILED")),
        ("worst unavailability (writes / reads)",
         f"{max(gaps.values(), default=0.0):.1f} / {max(read_gaps.values(), default=0.0):.1f} s"),
        ("run time", f"{rec.run_seconds:.0f} s"),
    ]
    return Figures(rows, violations)


def unavailability(fault: Fault, ack_times: Iterable[float]) -> float:
    """The longest stretch inside the fault's round, starting at the fault, with no write acknowledged."""
    times = sorted(t for t in ack_times if fault.at <= t <= fault.until)
    edges = [fault.at, *times]
    gaps = [b - a for a, b in zip(edges, edges[1:])]
    if not times:
        return fault.until - fault.at
    return max(gaps, default=0.0)


def _by_key(calls: Iterable[Call]) -> dict[tuple[str, str], list[linearizability.Op]]:
    by_key: dict[tuple[str, str], list[linearizability.Op]] = defaultdict(list)
    for c in calls:
        by_key[(c.workspace, c.key)].append(linearizability.Op(c.kind, c.value, c.invoked, c.completed, c.version,
                                                               c.base, str(c.client)))
    return by_key


def _linearizable(calls: Sequence[Call], violations: list[str]) -> tuple[int, int]:
    """Each key's reads and writes against a register (chaos.linearizability); (calls checked, keys failing)."""
    bad = linearizability.check_history({f"{ws}/{key}": ops for (ws, key), ops in _by_key(calls).items()})
    if bad:
        violations.append(f"{len(bad)} keys have a history of reads and writes that is not linearizable, "
                          f"e.g. {bad[0]}")
    return len(calls), len(bad)


def _lost_writes(acks: Sequence[Ack], history: dict[int, Mutation], violations: list[str]) -> int:
    lost = [a for a in acks if (m := history.get(a.version)) is None or m.workspace != a.workspace
            or m.changes.get(a.key, "<absent>") != a.value]
    if lost:
        violations.append(f"{len(lost)} acknowledged writes are not in the history at their version, e.g. {lost[0]}")
    return len(lost)


def _sequence(versions: Sequence[int], what: str, violations: list[str]) -> int:
    """Duplicates in a version sequence; any gap, duplicate or reordering is a violation."""
    duplicates = len(versions) - len(set(versions))
    if list(versions) != list(range(1, len(versions) + 1)):
        first = next((i + 1 for i, v in enumerate(versions) if v != i + 1), None)
        violations.append(f"{what} versions are not 1..{len(versions)} in order ({duplicates} duplicates; "
                          f"first off at position {first})")
    return duplicates


def _cas_chains(cas: Sequence[Ack], violations: list[str]) -> None:
    """Two compare-and-set successes on one key can never start from the same version."""
    by_key: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    for ack in cas:
        by_key[(ack.workspace, ack.key)][ack.if_version or 0] += 1
    for (workspace, key), bases in sorted(by_key.items()):
        twice = [base for base, n in bases.items() if n > 1]
        if twice:
            violations.append(f"{workspace}/{key}: {len(twice)} compare-and-set successes share a base version, "
                              f"e.g. if_version={twice[0]}")


def _pokes(pokes: Sequence[Poke], history: Sequence[Mutation], type_: str, violations: list[str]) -> int:
    """Pokes strictly increase, and each mutation's workspace is in the first poke at or after it."""
    versions = [p.version for p in pokes]
    duplicates = len(versions) - len(set(versions))
    if any(b <= a for a, b in zip(versions, versions[1:])):
        violations.append(f"poke versions do not strictly increase ({duplicates} duplicates)")
    if history and (not pokes or pokes[-1].version != history[-1].version):
        violations.append(f"the last poke is at version {pokes[-1].version if pokes else 0}, the history ends at "
                          f"{history[-1].version}")
    index = 0
    missed = 0
    for mutation in history:
        while index < len(pokes) and pokes[index].version < mutation.version:
            index += 1
        if index == len(pokes):
            break
        if mutation.changes and mutation.workspace not in pokes[index].changes.get(type_, []):
            missed += 1
    if missed:
        violations.append(f"{missed} mutations are not announced by the poke that covers their version")
    return duplicates


def _equal(observer: Observer, service: Config) -> bool:
    return {ws: kv for ws, kv in observer.state.items() if kv} == {ws: kv for ws, kv in service.items() if kv}


def _observers(observers: Sequence[Observer], service: Config, violations: list[str]) -> None:
    for observer in observers:
        if not _equal(observer, service):
            differing = sorted(ws for ws in set(observer.state) | set(service)
                               if observer.state.get(ws, {}) != service.get(ws, {}))
            violations.append(f"{observer.name} (version {observer.version}) ends with a state other than the "
                              f"service's (workspaces {', '.join(differing)})")
        if observer.out_of_order:
            violations.append(f"{observer.name}: {observer.out_of_order} handler calls went back in version")


def take_over(activations: Sequence[tuple[float, float]], at: float) -> dict[str, float]:
    """The phases of the first writer activation (when, how long it took) at or after a fault at ``at``:
    seconds from the fault until the writer was active again, and how long the activation itself took."""
    after = sorted((ts, took) for ts, took in activations if ts >= at)
    if not after:
        return {}
    ts, took = after[0]
    return {"writer active again": ts - at, "writer activation took": took}


def _phase_rows(faults: Sequence[Fault], kind: str) -> list[tuple[str, str]]:
    """One row per phase measured in the rounds of ``kind``: p50 and max over the rounds that saw it."""
    seen: dict[str, list[float]] = defaultdict(list)
    for fault in faults:
        if fault.kind == kind:
            for phase, seconds in fault.phases:
                seen[phase].append(seconds)
    return [(f"    {kind}: {phase}", f"p50 {statistics.median(values):.1f} s, max {max(values):.1f} s ({len(values)} rounds)")
            for phase, values in sorted(seen.items())]


def _p50(gaps: dict[Fault, float], kind: str) -> float:
    values = [g for f, g in gaps.items() if f.kind == kind]
    return statistics.median(values) if values else 0.0


def _max(gaps: dict[Fault, float], kind: str) -> float:
    return max((g for f, g in gaps.items() if f.kind == kind), default=0.0)
