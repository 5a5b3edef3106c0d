"""The guarantees of docs/design.md §9 on a replicated cluster under faults: a reduced, seeded
chaos run with its model check.

It starts its own 3-node KRaft cluster on free ports (not the session's broker, which it must not
crash), two `serve` processes and the client processes of :mod:`chaos`, injects one fault per round
(a crashed and a frozen log leader, a paused writer and client, a killed projector), and fails with
the figures table when any guarantee does not hold, each key's plain reads and writes checked for
linearizability among them. ``make chaos`` and ``make chaos-long`` are the full runs.
"""

from __future__ import annotations

import pytest

from chaos.run import ChaosSpec, run_chaos

pytestmark = pytest.mark.integration


KINDS = ["kill-broker-log-leader", "pause-broker-15s", "pause-active-writer", "pause-client", "kill-projector"]


@pytest.mark.timeout(600)
async def test_a_seeded_chaos_run_on_a_three_node_cluster_keeps_every_guarantee(tmp_path):
    spec = ChaosSpec(workdir=tmp_path, seed=11, rounds=len(KINDS), kinds=KINDS, writers=4, cas_writers=2, readers=2,
                     subscribers=4, views=1, settle_s=2.0, pause_s=5.0, client_pause_s=5.0)

    figures = await run_chaos(spec)

    table = "\n".join(figures.table())
    assert figures.ok, table
    rows = dict(figures.rows)
    assert rows["rounds (faults)"] == str(len(KINDS)), table
    assert all(f"  {kind}" in rows for kind in KINDS), table
    assert int(rows["writes acknowledged"].split()[0]) > 0, table
    assert rows["acknowledged writes lost"] == "0", table
    assert rows["observers equal to the service"] == "5 / 5", table
    checked = rows["calls checked for linearizability"]
    assert int(checked.split()[0]) > 0 and checked.endswith(", 0 keys not linearizable"), table
