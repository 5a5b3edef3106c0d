"""The local Apache Kafka broker the project provisions for itself (Maven jars, KRaft, loopback)."""

from eventconfig.localbroker.broker import (DOWN, KAFKA_VERSION, PAUSED, UP, BrokerError, BrokerState, LocalBroker,
                                            NodeState, default_cache_dir, prewarm, provision)

__all__ = ["DOWN", "KAFKA_VERSION", "PAUSED", "UP", "BrokerError", "BrokerState", "LocalBroker", "NodeState",
           "default_cache_dir", "prewarm", "provision"]
