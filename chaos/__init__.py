"""A seeded chaos run with a model check: eventconfig on a 3-node Kafka cluster under faults.

``python -m chaos --seed 7 --rounds 10`` (or ``make chaos``) starts a local 3-node KRaft cluster
(replication factor 3, ``min.insync.replicas`` 2), an active/standby pair of ``eventconfig serve``,
writers (some compare-and-set), plain and ``min_version`` readers, ``ConfigSubscriber``s and
``LocalView``s in subprocesses, injects one seeded random fault per round (kill -9 of a broker, a
frozen broker, SIGSTOP of the active writer or of a client, kill -9 of the projector or of a
LocalView), then checks the recorded outcome against a model of the guarantees (each key's reads and
writes with a linearizability checker) and prints the figures. Modules:

* :mod:`chaos.model`: the pure checks over what was recorded (calls, history, log, pokes, states).
* :mod:`chaos.linearizability`: the Wing-Gong search that checks one register's history.
* :mod:`chaos.load`: the writer and reader process; :mod:`chaos.observers`: subscribers and views.
* :mod:`chaos.faults`: finding a fault's target and injecting it; :mod:`chaos.run`: the orchestration.
"""
