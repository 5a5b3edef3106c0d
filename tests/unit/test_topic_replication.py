"""The replication factor and min.insync.replicas `topics create` gives a deployment's topics."""

from __future__ import annotations

import pytest

from eventconfig.errors import TopologyError
from eventconfig.kafka.topics import Replication, replication_for


@pytest.mark.parametrize(("brokers", "expected"), [(1, Replication(1, 1)), (2, Replication(2, 1)),
                                                   (3, Replication(3, 2)), (5, Replication(3, 2))])
def test_left_to_choose_three_replicas_or_every_broker_with_a_majority_in_sync(brokers, expected):
    assert replication_for(brokers) == expected


def test_a_given_pair_that_the_cluster_can_take_is_kept():
    assert replication_for(5, 5) == Replication(5, 3)
    assert replication_for(3, 3, 3) == Replication(3, 3)
    assert replication_for(3, 0, 1) == Replication(3, 1)
    assert replication_for(3, 1) == Replication(1, 1)


def test_more_replicas_than_brokers_is_refused_with_the_broker_count():
    with pytest.raises(TopologyError, match=r"^replication factor 3 needs 3 brokers; the cluster has 1 "
                                            r"\(give --replication-factor 1 or less\)$"):
        replication_for(1, 3)


def test_more_in_sync_replicas_than_replicas_is_refused():
    with pytest.raises(TopologyError, match="^min.insync.replicas 2 is more than the replication factor 1"):
        replication_for(1, 0, 2)
