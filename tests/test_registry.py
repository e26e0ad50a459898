"""Finding carrier plugins: installed entry points (the built-ins' too), import paths, and refusals."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from gateway.carriers import registry
from gateway.carriers.base import Carrier
from gateway.carriers.registry import ENTRY_POINT_GROUP, carrier_class
from gateway.config.loader import parse_config
from gateway.config.reader import ConfigError
from plugins.mock import MockCarrier, MockOptions
from tests import carriers
from tests.conftest import merge

RULE = "tests.carriers:RuleCarrier"


@pytest.fixture
def fresh_entry_points():
    """The registry caches installed plugins; every test that installs one starts and ends fresh."""
    registry._entry_point_targets.cache_clear()
    yield
    registry._entry_point_targets.cache_clear()


def install_plugin(site: Path, monkeypatch, entries: str) -> None:
    """A real installed distribution (dist-info on sys.path) declaring ``smsedge.providers``."""
    info = site / "smsedge_test_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: smsedge-test-plugin\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entries}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))


def test_builtin_names_resolve_to_their_classes():
    assert carrier_class("mock") is MockCarrier
    for name in ("tencent", "aliyun"):
        found = carrier_class(name)
        assert issubclass(found, Carrier)
        assert found.__module__ == f"plugins.{name}"


def test_the_entry_points_are_the_only_list_of_names(monkeypatch, fresh_entry_points):
    # Without its entry points even a built-in is unknown: there is no second list to drift.
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    with pytest.raises(ConfigError, match="unknown plugin 'mock'"):
        carrier_class("mock")
    assert carrier_class("plugins.mock:MockCarrier") is MockCarrier  # an import path still works


def test_an_import_path_loads_a_plugin_outside_the_package():
    assert carrier_class(RULE) is carriers.RuleCarrier


def test_the_installed_package_registers_its_plugins_as_entry_points():
    found = {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}
    assert {"mock", "tencent", "aliyun"} <= set(found)
    assert found["mock"].load() is MockCarrier
    for name in ("tencent", "aliyun"):
        assert found[name].load() is carrier_class(name)


def test_an_entry_point_of_another_installed_package_resolves(tmp_path, monkeypatch, fresh_entry_points):
    install_plugin(tmp_path, monkeypatch, f"rules = {RULE}")
    assert "rules" in {entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)}
    assert carrier_class("rules") is carriers.RuleCarrier
    with pytest.raises(ConfigError) as caught:
        carrier_class("nosuch")
    assert "rules" in str(caught.value)


def test_an_entry_point_works_from_the_config_file(
    tmp_path, monkeypatch, fresh_entry_points, config_document
):
    install_plugin(tmp_path, monkeypatch, f"rules = {RULE}")
    document = merge(
        config_document,
        {
            "providers": {
                "backends": {"bulk": {"plugin": "rules", "price": 0.01, "refuse": ["+8613900139000"]}}
            }
        },
    )
    backend = parse_config(document).providers.backends["bulk"]
    assert backend.plugin == "rules"
    assert backend.options.refuse == ("+8613900139000",)


def test_a_name_claimed_by_two_classes_is_refused(tmp_path, monkeypatch, fresh_entry_points):
    install_plugin(tmp_path, monkeypatch, f"mock = {RULE}")
    with pytest.raises(ConfigError, match="registered twice"):
        carrier_class("nosuch")


def test_an_unknown_name_lists_the_known_ones_at_the_given_path(fresh_entry_points):
    with pytest.raises(ConfigError) as caught:
        carrier_class("nosuch", "providers.backends.x.plugin")
    message = str(caught.value)
    assert message.startswith("providers.backends.x.plugin: ")
    assert "'nosuch'" in message
    for known in ("aliyun", "mock", "tencent"):
        assert known in message


@pytest.mark.parametrize(
    ("plugin", "fragment"),
    [
        ("tests.carriers:NotACarrier", "not a Carrier"),
        ("tests.carriers:RENDEZVOUS_TIMEOUT", "not a Carrier"),
        ("tests.carriers:Missing", "cannot load"),
        ("tests.no_such_module:Carrier", "cannot load"),
        ("tests.carriers:", "cannot load"),
        (":RuleCarrier", "cannot load"),
    ],
)
def test_a_path_that_is_not_a_carrier_class_is_a_config_error(plugin, fragment):
    with pytest.raises(ConfigError) as caught:
        carrier_class(plugin, "providers.backends.x.plugin")
    assert str(caught.value).startswith("providers.backends.x.plugin: ")
    assert fragment in str(caught.value)


def test_a_half_written_plugin_is_refused_before_start_up():
    # A Carrier subclass that does not implement send() cannot be instantiated when the app
    # starts; check-config must say so rather than pass it.
    with pytest.raises(ConfigError, match=r"providers\.backends\.x\.plugin: "):
        carrier_class("tests.carriers:HalfCarrier", "providers.backends.x.plugin")


def rule_document(config_document, **backend):
    return merge(
        config_document, {"providers": {"backends": {"rule": {"plugin": RULE, "price": 0.01, **backend}}}}
    )


def test_a_backend_section_is_read_by_its_plugin(config_document):
    config = parse_config(rule_document(config_document, rendezvous=3, timeout=2, retries=0))
    rule = config.providers.backends["rule"]
    assert (rule.plugin, rule.price_milli, rule.timeout, rule.retries) == (RULE, 10, 2.0, 0)
    assert rule.options == carriers.RuleOptions(refuse=(), rendezvous=3)
    assert config.providers.backends["mock"].options == MockOptions()


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ({"colour": "red"}, "providers.backends.rule.colour: unknown key"),
        ({"latency_ms": 5}, "providers.backends.rule.latency_ms: unknown key"),
        ({"rendezvous": "three"}, "providers.backends.rule.rendezvous: must be an integer"),
        ({"rendezvous": -1}, "providers.backends.rule.rendezvous: must be between 0 and 1000"),
        ({"refuse": "+8613900139000"}, "providers.backends.rule.refuse: must be a list"),
        ({"plugin": "nosuch"}, "providers.backends.rule.plugin: unknown plugin 'nosuch'"),
        ({"plugin": "tests.carriers:NotACarrier"}, "providers.backends.rule.plugin: "),
    ],
)
def test_a_backend_option_the_plugin_does_not_know_names_the_key(config_document, backend, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(rule_document(config_document, **backend))
    assert str(caught.value).startswith(message)


def test_the_mock_refuses_options_of_other_plugins(config_document):
    document = merge(config_document, {"providers": {"backends": {"mock": {"region": "x"}}}})
    with pytest.raises(ConfigError, match=r"^providers\.backends\.mock\.region: unknown key$"):
        parse_config(document)


def test_a_backend_without_a_plugin_key_uses_its_own_name(config_document):
    document = merge(config_document, {"providers": {"backends": {"mock": {"plugin": None}}}})
    assert parse_config(document).providers.backends["mock"].plugin == "mock"
