"""The guarantees of docs/design.md §9 on a replicated cluster under faults: a reduced, seeded
chaos run with its model check.

It starts its own 3-node KRaft cluster on free ports (not the session's broker, which it must not
crash), two `serve` processes and the client processes of :mod:`chaos`, injects one fault per round,
and fails with the figures table when any guarantee does not hold. ``make chaos`` is the full run.
"""

from __future__ import annotations

import pytest

from chaos.run import ChaosSpec, run_chaos

pytestmark = pytest.mark.integration


@pytest.mark.timeout(480)
async def test_a_seeded_chaos_run_on_a_three_node_cluster_keeps_every_guarantee(tmp_path):
    spec = ChaosSpec(workdir=tmp_path, seed=11, rounds=3,
                     kinds=["kill-broker-log-leader", "pause-active-writer", "kill-projector"],
                     writers=4, cas_writers=2, readers=2, subscribers=4, views=1, settle_s=2.0, pause_s=8.0)

    figures = await run_chaos(spec)

    table = "\n".join(figures.table())
    assert figures.ok, table
    rows = dict(figures.rows)
    assert rows["rounds (faults)"] == "3", table
    assert int(rows["writes acknowledged"].split()[0]) > 0, table
    assert rows["acknowledged writes lost"] == "0", table
    assert rows["observers equal to the service"] == "5 / 5", table
