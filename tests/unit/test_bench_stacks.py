"""The benchmark's profile summary: py-spy's collapsed stacks summed into categories a reader can act on."""

from __future__ import annotations

import pytest

from bench.stacks import (AVRO, CLIENT, EVENT_LOOP, HARNESS, IDLE, KAFKA_CLIENT, KAFKA_CODEC, OTHER, SERVICE,
                          SOCKET, VIEW, WAITING, Stack, categorise, describe, parse_collapsed, speedscope, summarise)

LOOP = ("<module> (bench/probe_service.py:130)", "run (asyncio/runners.py:190)",
        "BaseEventLoop.run_forever (asyncio/base_events.py:607)",
        "BaseEventLoop._run_once (asyncio/base_events.py:1922)", "Handle._run (asyncio/events.py:80)")


@pytest.mark.parametrize(("leaf_frames", "category"), [
    (["EpollSelector.select (selectors.py:468)"], IDLE),
    (["_SelectorSocketTransport.write (asyncio/selector_events.py:1071)"], SOCKET),
    (["_SelectorSocketTransport._read_ready (asyncio/selector_events.py:970)",
      "AIOKafkaConnection.data_received (aiokafka/conn.py:500)",
      "Response.decode (aiokafka/protocol/struct.py:40)"], KAFKA_CODEC),
    (["Sender._send_produce_req (aiokafka/producer/sender.py:300)"], KAFKA_CLIENT),
    (["Fetcher._fetch (aiokafka/consumer/fetcher.py:600)", "DefaultRecordBatch.__iter__ (aiokafka/record/"
                                                            "default_records.py:200)"], KAFKA_CODEC),
    (["Codec.decode (eventconfig/codec.py:90)", "schemaless_reader (fastavro/_read_py.py:1100)"], AVRO),
    (["Materializer.apply (eventconfig/view/materializer.py:120)", "Store.write (eventconfig/view/store.py:77)"],
     VIEW),
    (["ConfigClient.put (eventconfig/client/client.py:210)", "dumps (json/__init__.py:231)"], CLIENT),
    (["process_batch (eventconfig/writer/batch.py:88)", "deepcopy (copy.py:128)"], SERVICE),
    (["_loop (bench/load.py:170)", "make_key (bench/load.py:40)"], HARNESS),
    (["Future.set_result (asyncio/futures.py:250)"], EVENT_LOOP),
])
def test_a_sample_counts_for_its_innermost_frame_whose_file_says_what_it_is(leaf_frames: list[str],
                                                                            category: str) -> None:
    assert categorise([*LOOP, *leaf_frames]) == category


def test_full_file_names_and_a_blocked_pool_thread_are_recognised_too() -> None:
    assert categorise(["_worker (/usr/lib/python3.11/concurrent/futures/thread.py:81)"]) == WAITING
    assert categorise(["f (/srv/app/.venv/lib/python3.11/site-packages/aiokafka/protocol/api.py:10)"]) == KAFKA_CODEC


def test_a_stack_of_unknown_files_is_other() -> None:
    assert categorise(["<module> (script.py:1)", "work (numbers.py:5)"]) == OTHER
    assert categorise([]) == OTHER


def test_unknown_code_the_loop_or_a_pool_thread_runs_is_other_not_machinery() -> None:
    assert categorise([*LOOP, "on_tick (plugin/ticker.py:12)", "dumps (json/__init__.py:231)"]) == OTHER
    assert categorise(["_worker (concurrent/futures/thread.py:83)", "run (concurrent/futures/thread.py:58)",
                       "compress (zlib_helper.py:9)"]) == OTHER


RAW = """\
thread (101): MainThread;<module> (bench/probe_service.py:130);BaseEventLoop._run_once (asyncio/base_events.py:1895);EpollSelector.select (selectors.py:468) 60
thread (101): MainThread;<module> (bench/probe_service.py:130);Handle._run (asyncio/events.py:80);_SelectorSocketTransport.write (asyncio/selector_events.py:1071) 30
thread (101): MainThread;<module> (bench/probe_service.py:130);Handle._run (asyncio/events.py:80);Response.decode (aiokafka/protocol/struct.py:40) 10
thread (102): ThreadPoolExecutor-0_0;_bootstrap (threading.py:995);_worker (concurrent/futures/thread.py:81) 100
not a stack line
"""


def test_collapsed_stacks_parse_with_their_thread_and_count() -> None:
    stacks = parse_collapsed(RAW)
    assert len(stacks) == 4  # the line without a count is skipped
    assert stacks[0].thread == "thread (101): MainThread"
    assert stacks[0].frames[-1] == "EpollSelector.select (selectors.py:468)" and stacks[0].count == 60


def test_the_summary_splits_busy_time_and_leaves_out_idle_loops_and_waiting_threads() -> None:
    summary = summarise(parse_collapsed(RAW))
    assert summary.window == 100  # every thread is sampled at each of the 100 instants
    assert summary.busy == 40
    assert summary.idle_fraction == 0.6
    assert summary.shares() == {SOCKET: 0.75, KAFKA_CODEC: 0.25}


def test_the_description_scales_the_shares_to_the_measured_cpu() -> None:
    summary = summarise(parse_collapsed(RAW))
    assert describe(summary, cpu_pct=40.0) == "socket I/O 30%, Kafka protocol encode/decode 10%"
    assert describe(summary, cpu_pct=None) == "socket I/O 75%, Kafka protocol encode/decode 25%"


def test_small_categories_are_summed_into_other_and_nothing_busy_is_said_plainly() -> None:
    summary = summarise([Stack("t", ("a (eventconfig/writer/batch.py:1)",), 90),
                         Stack("t", ("b (fastavro/_read_py.py:1)",), 1), Stack("t", ("c (x.py:1)",), 9)])
    # Avro's 1 % of the busy samples is under the 3 % floor: it joins the unknown 9 % in "other"
    assert describe(summary, cpu_pct=50.0) == "eventconfig service 45%, other 5.0%"
    assert describe(summary, cpu_pct=4.0) == "eventconfig service 3.6%, other 0.4%"  # a quiet process too
    assert describe(summarise([]), cpu_pct=50.0) == "no busy samples"


def test_the_speedscope_file_has_one_sampled_profile_per_thread_over_shared_frames() -> None:
    stacks = parse_collapsed(RAW)
    document = speedscope(stacks, "put64 service")
    names = [f["name"] for f in document["shared"]["frames"]]
    main, pool = document["profiles"]
    assert (main["name"], main["endValue"], main["weights"]) == ("thread (101): MainThread", 100, [60, 30, 10])
    assert [names[i] for i in main["samples"][0]] == list(stacks[0].frames)
    assert pool["endValue"] == 100


def test_the_innermost_package_decides_whatever_folders_hold_the_checkout() -> None:
    assert categorise(["_loop (/home/me/eventconfig/bench/load.py:170)"]) == HARNESS
    assert categorise(["process_batch (/home/me/bench/eventconfig/writer/batch.py:88)"]) == SERVICE
    assert categorise(["get (/home/me/eventconfig/eventconfig/client/client.py:5)"]) == CLIENT
    assert categorise(["Queue.get (/usr/lib/python3.11/asyncio/queues.py:158)"]) == EVENT_LOOP
