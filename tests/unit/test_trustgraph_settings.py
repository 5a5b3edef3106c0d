"""How ``serve``/``project`` decide which TrustGraph topicspace to serve, if any."""

from __future__ import annotations

import click
import pytest

from eventconfig.cli.main import cli
from eventconfig.cli.serve import load_serve_settings
from eventconfig.settings import Settings, SettingsError


@pytest.fixture
def ctx(monkeypatch: pytest.MonkeyPatch) -> click.Context:
    monkeypatch.delenv("EVENTCONFIG_TRUSTGRAPH_TOPICSPACE", raising=False)
    context = click.Context(cli)
    context.obj = {}
    return context


def test_the_front_end_is_off_unless_asked_for(ctx: click.Context) -> None:
    assert load_serve_settings(ctx, trustgraph=False, trustgraph_topicspace=None).trustgraph_topicspace == ""


def test_trustgraph_alone_serves_tg_and_a_topicspace_implies_it(ctx: click.Context) -> None:
    assert load_serve_settings(ctx, trustgraph=True, trustgraph_topicspace=None).trustgraph_topicspace == "tg"
    assert load_serve_settings(ctx, trustgraph=False, trustgraph_topicspace="tenant-a").trustgraph_topicspace == \
        "tenant-a"


def test_the_environment_names_the_topicspace(ctx: click.Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTCONFIG_TRUSTGRAPH_TOPICSPACE", "tg2")
    assert load_serve_settings(ctx, trustgraph=True, trustgraph_topicspace=None).trustgraph_topicspace == "tg2"


@pytest.mark.parametrize("topicspace", ["tg:x", "t g", "tg/1"])
def test_a_topicspace_that_is_no_topic_name_part_is_refused(topicspace: str) -> None:
    with pytest.raises(SettingsError, match="TrustGraph topicspace"):
        Settings.load({"trustgraph_topicspace": topicspace}, env={})
