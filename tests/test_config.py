"""The YAML config: ${VAR} expansion, one-line errors naming the key path, defaults, check-config."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.config.loader import config_path, load_config, parse_config
from gateway.config.model import DEFAULT_CONFIG_PATH, Settings
from gateway.config.reader import ConfigError
from plugins.mock import MockCarrier
from tests.conftest import ROOT, merge
from tests.gateway_process import run_py

PRODUCTION = ROOT / "config" / "production.example.yaml"
PRODUCTION_CREDENTIALS = "/etc/sms-edge/credentials"  # where the example's ${file:...} secrets are
PRODUCTION_SECRETS = {
    "tencent-secret-id": "AKIDexample0000000000",
    "tencent-secret-key": "tencent-secret-key-0000",
    "aliyun-access-key-id": "LTAIexample000000",
    "aliyun-access-key-secret": "aliyun-secret-0000000",
    "secret-key": "phone-hash-key-0000000000000000",
}
TEMPLATE = """\
server:
  port: ${SMS_EDGE_T_PORT}
  timezone: ${SMS_EDGE_T_TZ:-Europe/Berlin}
store:
  path: %s
providers:
  backends:
    mock:
      plugin: mock
      price: ${SMS_EDGE_T_PRICE:-0.07}
accounts:
  - name: ops
    api_key: ${SMS_EDGE_T_KEY:-sk_ops_default_key}
    api_secret: ${SMS_EDGE_T_SECRET}
"""


@pytest.fixture
def env_config(tmp_path, monkeypatch) -> Path:
    for name in ("SMS_EDGE_T_PORT", "SMS_EDGE_T_TZ", "SMS_EDGE_T_PRICE", "SMS_EDGE_T_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMS_EDGE_T_PORT", "9191")
    monkeypatch.setenv("SMS_EDGE_T_SECRET", "ops-secret-from-env")
    path = tmp_path / "env.yaml"
    path.write_text(TEMPLATE % (tmp_path / "env.db"), encoding="utf-8")
    return path


def test_variables_are_expanded_before_parsing(env_config):
    config = load_config(env_config)
    assert config.server.port == 9191  # typed as the YAML it became
    assert config.accounts[0].api_secret == "ops-secret-from-env"


def test_a_default_applies_when_the_variable_is_unset_or_empty(env_config, monkeypatch):
    config = load_config(env_config)
    assert config.server.timezone == "Europe/Berlin"
    assert config.providers.backends["mock"].price_milli == 70
    assert config.accounts[0].api_key == "sk_ops_default_key"
    monkeypatch.setenv("SMS_EDGE_T_TZ", "")
    assert load_config(env_config).server.timezone == "Europe/Berlin"
    monkeypatch.setenv("SMS_EDGE_T_TZ", "Asia/Tokyo")
    monkeypatch.setenv("SMS_EDGE_T_PRICE", "0.1")
    config = load_config(env_config)
    assert config.server.timezone == "Asia/Tokyo"
    assert config.providers.backends["mock"].price_milli == 100


def test_an_unset_variable_of_a_required_key_is_required_and_named(env_config, monkeypatch):
    monkeypatch.delenv("SMS_EDGE_T_SECRET")
    with pytest.raises(ConfigError) as caught:
        load_config(env_config)
    assert str(caught.value) == "accounts[0].api_secret: required (SMS_EDGE_T_SECRET is not set)"


def production_example(directory: Path, leave_out: str = "") -> Path:
    """config/production.example.yaml with its secret files in ``directory`` (all but ``leave_out``)."""
    credentials = directory / "credentials"
    credentials.mkdir()
    for name, value in PRODUCTION_SECRETS.items():
        if name != leave_out:
            (credentials / name).write_text(f"{value}\n", encoding="utf-8")
    path = directory / "production.yaml"
    text = PRODUCTION.read_text(encoding="utf-8").replace(PRODUCTION_CREDENTIALS, str(credentials))
    path.write_text(text, encoding="utf-8")
    return path


def test_the_production_example_reads_its_secrets_from_files(tmp_path):
    config = load_config(production_example(tmp_path))
    assert config.providers.backends["tencent"].options.secret_key == "tencent-secret-key-0000"
    assert config.server.secret_key == "phone-hash-key-0000000000000000"


def test_a_missing_carrier_secret_file_names_its_key_and_its_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(production_example(tmp_path, leave_out="tencent-secret-key"))
    assert str(caught.value) == (
        "providers.backends.tencent.secret_key: cannot read secret file "
        f"{tmp_path}/credentials/tencent-secret-key: No such file or directory"
    )


def file_secret_config(tmp_path: Path, secret: str, callback: str = "") -> Path:
    """The env template with the account's secret (and optionally the mock's callback token) in files."""
    path = tmp_path / "files.yaml"
    text = (TEMPLATE % (tmp_path / "files.db")).replace("${SMS_EDGE_T_SECRET}", secret)
    if callback:
        text = text.replace("      price:", f"      callback_token: {callback}\n      price:")
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_secret_is_read_without_its_trailing_newline(env_config, tmp_path):
    """What ``echo``, systemd credentials and Kubernetes secret files hold: the value and a newline."""
    secret = tmp_path / "api-secret"
    secret.write_text("from-a-file #not: a comment\n", encoding="utf-8")
    port = tmp_path / "port"
    port.write_text("9393\r\n", encoding="utf-8")
    path = file_secret_config(tmp_path, f"${{file:{secret}}}")
    path.write_text(path.read_text().replace("${SMS_EDGE_T_PORT}", f"${{file:{port}}}"), encoding="utf-8")
    config = load_config(path)
    assert config.accounts[0].api_secret == "from-a-file #not: a comment"
    assert config.server.port == 9393
    secret.write_text("rotated-in-the-file\n", encoding="utf-8")
    assert load_config(path).accounts[0].api_secret == "rotated-in-the-file"  # read on every load


@pytest.mark.parametrize("problem", ["missing", "directory", "not UTF-8", "relative"])
def test_an_unreadable_secret_file_names_the_file_and_the_key_never_its_content(
    env_config, tmp_path, problem
):
    secret = tmp_path / "secret"
    if problem == "directory":
        secret.mkdir()
    elif problem == "not UTF-8":
        secret.write_bytes(b"hush-hush-\xff\xfe-0123\n")
    reference = "secrets/api-secret" if problem == "relative" else str(secret)
    path = file_secret_config(tmp_path, f"${{file:{reference}}}")
    expected = {
        "missing": f"cannot read secret file {secret}: No such file or directory",
        "directory": f"cannot read secret file {secret}: Is a directory",
        "not UTF-8": f"secret file {secret} is not UTF-8 text",
        "relative": "secret file secrets/api-secret: the path must be absolute",
    }[problem]
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"accounts[0].api_secret: {expected}"
    assert "hush" not in str(caught.value)


def test_an_unreadable_secret_file_is_an_error_even_where_the_key_is_optional(env_config, tmp_path):
    missing = tmp_path / "callback-token"
    path = file_secret_config(tmp_path, "long-enough-secret", callback=f"${{file:{missing}}}")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        "providers.backends.mock.callback_token: "
        f"cannot read secret file {missing}: No such file or directory"
    )


def test_an_empty_secret_file_of_a_required_key_is_required_and_named(env_config, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(file_secret_config(tmp_path, f"${{file:{empty}}}"))
    assert str(caught.value) == f"accounts[0].api_secret: required (secret file {empty} is empty)"


@pytest.mark.parametrize(
    "secret", ["plain-secret-value", "s3cr3t #hash-tail", "key: value-like", "0123456701234567"]
)
def test_a_variable_value_is_taken_literally(env_config, monkeypatch, secret):
    # Secrets come from the environment so that any character may be in them.
    monkeypatch.setenv("SMS_EDGE_T_SECRET", secret)
    assert load_config(env_config).accounts[0].api_secret == secret


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"serverr": {}}, "serverr: unknown key"),
        ({"server": {"prot": 1}}, "server.prot: unknown key"),
        (
            {"providers": {"backends": {"mock": {"colour": "red"}}}},
            "providers.backends.mock.colour: unknown key",
        ),
        ({"templates": {"1": {"params": ["a"], "id": "x"}}}, "templates.1.id: unknown key"),
        ({"server": {"port": "abc"}}, "server.port: must be an integer"),
        ({"server": {"port": True}}, "server.port: must be an integer"),
        ({"server": []}, "server: must be a mapping"),
        ({"metrics": {"enabled": "yes"}}, "metrics.enabled: must be true or false"),
        ({"ratelimit": {"phone": {"limit": 1}}}, "ratelimit.phone: must be a list"),
        (
            {"ratelimit": {"phone": [{"limit": 1, "seconds": 60}, {"limit": "x", "seconds": 1}]}},
            "ratelimit.phone[1].limit: must be an integer",
        ),
        (
            {"providers": {"backends": {"mock": {"price": "cheap"}}}},
            "providers.backends.mock.price: must be an amount in yuan",
        ),
        ({"server": {"port": 70000}}, "server.port: must be between 0 and 65535"),
        ({"server": {"max_body_bytes": 10}}, "server.max_body_bytes: must be between"),
        ({"server": {"timezone": "Mars/Olympus"}}, "server.timezone: unknown time zone"),
        ({"ratelimit": {"account": {"rate": 0, "burst": 1}}}, "ratelimit.account.rate: must be"),
        (
            {"ratelimit": {"phone": [{"limit": 1, "seconds": 0}]}},
            "ratelimit.phone[0].seconds: must be between",
        ),
        ({"ratelimit": {"backend": "memcached"}}, "ratelimit.backend: must be one of memory, redis"),
        (
            {"providers": {"backends": {"mock": {"fail_rate": 1.5}}}},
            "providers.backends.mock.fail_rate: must be between",
        ),
        (
            {"providers": {"backends": {"mock": {"price": -1}}}},
            "providers.backends.mock.price: must be a non-negative amount",
        ),
        (
            {"providers": {"backends": {"mock": {"price": 0.0001}}}},
            "providers.backends.mock.price: must be a non-negative amount with at most 3 decimals",
        ),
        ({"providers": {"default": "nosuch"}}, "providers.default: unknown backend 'nosuch'"),
        ({"providers": {"failover": ["mock", "gone"]}}, "providers.failover[1]: unknown backend"),
        ({"metrics": {"path": "/api/metrics"}}, "metrics.path: must start with /"),
        ({"providers": {"backends": {"mock": {"price": None}}}}, "providers.backends.mock.price: required"),
        ({"redis": {"mode": "replicated"}}, "redis.mode: must be one of standalone, cluster, sentinel"),
        ({"redis": {"mode": "sentinel"}}, "redis.sentinels: sentinel mode needs at least one host:port"),
        (
            {"redis": {"mode": "sentinel", "sentinels": ["10.0.0.1:26379", "10.0.0.2"]}},
            'redis.sentinels[1]: must be "host:port"',
        ),
        ({"redis": {"sentinels": ["10.0.0.1:99999"]}}, 'redis.sentinels[0]: must be "host:port"'),
        (
            {"redis": {"mode": "sentinel", "sentinels": ["a:1"], "url": "rediss://h/0"}},
            "redis.url: in sentinel mode must be a redis:// URL",
        ),
        (
            {"redis": {"mode": "cluster", "url": "unix:///run/redis.sock"}},
            "redis.url: a cluster node is a redis:// or rediss:// URL",
        ),
        ({"redis": {"wait_replicas": -1}}, "redis.wait_replicas: must be between 0 and 100"),
        ({"redis": {"wait_replicas": 1.5}}, "redis.wait_replicas: must be an integer"),
        (
            {"redis": {"wait_replicas": 1, "timeout": 0.1}},
            "redis.timeout: must be at least 0.25 with wait_replicas",
        ),
        # A receipt finds its record by the number's keyed hash: a key made per process would
        # leave every send made before a restart waiting for a receipt that no longer matches.
        (
            {"providers": {"backends": {"mock": {"receipts": True}}}},
            "server.secret_key: required when a backend takes delivery receipts (mock)",
        ),
    ],
)
def test_each_problem_is_one_config_error_naming_the_key_path(config_document, overrides, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(merge(config_document, overrides))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_every_problem_is_listed_one_a_line(config_document):
    document = merge(
        config_document,
        {
            "server": {"port": "abc", "prot": 1},
            "ratelimit": {"account": {"rate": 0, "burst": 1}, "phone": [{"limit": "x", "seconds": 0}]},
            "providers": {"backends": {"mock": {"prise": 0.05, "fail_rate": 2}}},
            "metrics": {"enabled": "yes"},
        },
    )
    del document["providers"]["backends"]["mock"]["price"]
    del document["accounts"][0]["api_secret"]
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert str(caught.value).splitlines() == [
        "server.port: must be an integer",
        "server.prot: unknown key",
        "ratelimit.account.rate: must be between 0.001 and 1000000.0",
        "ratelimit.phone[0].limit: must be an integer",
        "ratelimit.phone[0].seconds: must be between 1 and 2678400",
        "providers.backends.mock.price: required (found unknown key prise — misspelt?)",
        "providers.backends.mock.fail_rate: must be between 0.0 and 1.0",
        "metrics.enabled: must be true or false",
        "accounts[0].api_secret: required",
    ]


def test_a_problem_is_listed_once_not_again_as_what_it_caused(config_document):
    """A value refused by its type is not refused again by a later rule about the same key."""
    account = {**config_document["accounts"][0], "api_secret": None, "ratelimit": {"rate": 1}}
    redis = {"mode": "sentinel", "sentinels": ["no-port"]}
    with pytest.raises(ConfigError) as caught:
        parse_config({**config_document, "accounts": [account], "redis": redis})
    assert str(caught.value).splitlines() == [
        'redis.sentinels[0]: must be "host:port"',
        "accounts[0].api_secret: required",
        "accounts[0].ratelimit.burst: required",
    ]


class CountingOptions(Settings, frozen=True, kw_only=True):
    count: int


class CountingCarrier(MockCarrier):
    """A plugin that works on a value it has read, as plugins may: a count."""

    Options = CountingOptions  # type: ignore[assignment]  # a mock with other options


def test_a_plugin_tripping_over_a_stand_in_value_does_not_hide_the_problem(config_document):
    """A plugin's option left out is reported as the core's are, never a traceback."""
    document = merge(
        config_document,
        {
            "providers": {
                "backends": {"counting": {"plugin": "tests.test_config:CountingCarrier", "price": 0.01}}
            }
        },
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert str(caught.value) == "providers.backends.counting.count: required"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"role": "admin"}, "accounts[0].role: unknown key"),
        ({"api_secret": None}, "accounts[0].api_secret: required"),
        ({"api_secret": "short"}, "accounts[0].api_secret: must be at least 12 characters"),
        ({"verification_status": "maybe"}, "accounts[0].verification_status: must be one of"),
        ({"balance": "lots"}, "accounts[0].balance: must be an amount in yuan"),
        ({"providers": ["mock", "nosuch"]}, "accounts[0].providers[1]: unknown backend 'nosuch'"),
        ({"ratelimit": {"rate": 1}}, "accounts[0].ratelimit.burst: required"),
        ({"name": "demo\n12:00:00.000 ERROR forged"}, "accounts[0].name: may not hold control"),
        ({"name": "demo\u202eomed"}, "accounts[0].name: may not hold control"),
        ({"name": "audit-1280-1796628604"}, "accounts[0].name: may not hold a run of 7 or more digits"),
        ({"name": "  "}, "accounts[0].name: a name of 1-64 characters"),
        ({"callback_prefixes": ["hooks.example.com"]}, "accounts[0]: callback_prefixes: must be an absolute"),
        (
            {"callback_prefixes": ["https://a.example.com/"], "callback_url": "https://b.example.com/"},
            "accounts[0]: callback_url: must start with one of the account's callback_prefixes",
        ),
        ({"callback_url": "https://a.example.com/"}, "accounts[0]: callback_url: the account has no"),
    ],
)
def test_account_seed_errors_name_the_list_index(config_document, changes, message):
    account = {**config_document["accounts"][0], **changes}
    with pytest.raises(ConfigError) as caught:
        parse_config({**config_document, "accounts": [account]})
    assert str(caught.value).startswith(message)


def test_listed_names_are_trimmed_and_two_that_read_the_same_are_refused(config_document):
    seed = config_document["accounts"][0]
    trimmed = parse_config({**config_document, "accounts": [{**seed, "name": "  demo "}]})
    assert trimmed.accounts[0].name == "demo"
    twin = {**seed, "name": "ＤＥＭＯ", "api_key": "sk_twin_000000000000"}  # fullwidth, upper case
    with pytest.raises(ConfigError, match=r"^accounts\[1\]\.name: the same name as accounts\[0\]"):
        parse_config({**config_document, "accounts": [seed, twin]})


def test_defaults_fill_every_key_left_out():
    config = parse_config({"providers": {"backends": {"mock": {"price": 0.05}}}})
    server = config.server
    assert (server.host, server.port, server.max_body_bytes) == ("127.0.0.1", 8080, 65536)
    assert (server.timezone, server.workers) == ("Asia/Shanghai", 1)
    assert (config.store.backend, config.store.path) == ("sqlite", "data/sms-edge.db")
    assert (config.ratelimit.backend, config.ratelimit.on_backend_error) == ("memory", "allow")
    assert (config.ratelimit.account.rate, config.ratelimit.account.burst) == (20.0, 40)
    assert (config.providers.default, config.providers.failover) == ("mock", ())
    mock = config.providers.backends["mock"]
    assert (mock.plugin, mock.price_milli, mock.timeout, mock.retries) == ("mock", 50, 5.0, 1)
    assert (mock.receipts, mock.callback_token) == (False, "")
    assert (config.metrics.enabled, config.metrics.path) == (True, "/metrics")
    assert (config.logging.level, config.logging.format) == ("INFO", "auto")
    assert (config.redis.mode, config.redis.sentinels, config.redis.service) == ("standalone", (), "mymaster")
    assert config.redis.wait_replicas == 0
    assert config.templates == {} and config.accounts == ()


def test_sentinels_are_read_as_host_and_port():
    config = parse_config(
        {
            "providers": {"backends": {"mock": {"price": 0.05}}},
            "redis": {"mode": "sentinel", "service": "sms", "sentinels": ["10.0.0.1:26379", "[::1]:26380"]},
        }
    )
    assert config.redis.sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert config.redis.service == "sms"


def test_a_config_without_backends_is_refused():
    with pytest.raises(ConfigError, match=r"^providers\.backends: at least one backend"):
        parse_config(None)


def test_config_path_order(monkeypatch):
    monkeypatch.delenv("SMS_EDGE_CONFIG", raising=False)
    assert config_path() == DEFAULT_CONFIG_PATH == "config/gateway.yaml"
    monkeypatch.setenv("SMS_EDGE_CONFIG", "from-env.yaml")
    assert config_path() == "from-env.yaml"
    assert config_path("explicit.yaml") == "explicit.yaml"


def check_config(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "SMS_EDGE_CONFIG"}
    return run_py(*args, env={**clean, **(env or {})})


def assert_refused(result: subprocess.CompletedProcess[str], line: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [line]
    assert "Traceback" not in result.stderr


def refused_lines(path: Path, document: dict) -> list[str]:
    """What check-config prints of ``document`` written to ``path``: refused (exit 2), no traceback."""
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = check_config("check-config", "--config", str(path))
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    return result.stderr.splitlines()


def broken_config(tmp_path: Path, **server: object) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(
        yaml.safe_dump(
            merge(
                yaml.safe_load((ROOT / DEFAULT_CONFIG_PATH).read_text(encoding="utf-8")), {"server": server}
            )
        )
    )
    return path


def test_check_config_accepts_the_shipped_default():
    result = check_config("check-config")
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_check_config_accepts_the_production_example_with_its_secret_files(tmp_path):
    result = check_config("check-config", "--config", str(production_example(tmp_path)))
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_check_config_names_the_key_and_the_missing_secret_file_in_one_line(tmp_path):
    path = production_example(tmp_path, leave_out="aliyun-access-key-secret")
    result = check_config("check-config", "--config", str(path))
    assert_refused(
        result,
        "providers.backends.aliyun.access_key_secret: cannot read secret file "
        f"{tmp_path}/credentials/aliyun-access-key-secret: No such file or directory",
    )


def test_check_config_names_the_key_and_the_unset_variable_in_one_line(env_config, monkeypatch):
    monkeypatch.delenv("SMS_EDGE_T_SECRET")
    result = check_config("check-config", "--config", str(env_config), env={"SMS_EDGE_T_PORT": "9191"})
    assert_refused(result, "accounts[0].api_secret: required (SMS_EDGE_T_SECRET is not set)")


def test_check_config_prints_every_problem_and_names_a_misspelt_key(tmp_path):
    document = merge(
        yaml.safe_load((ROOT / DEFAULT_CONFIG_PATH).read_text(encoding="utf-8")),
        {
            "server": {"port": "abc"},
            "providers": {
                "backends": {
                    "tencent": {
                        "plugin": "tencent",
                        "secret_id": "id",
                        "secret_key": "key",
                        "sdk_app_id": "1400000000",
                        "sign_nam": "SMS Edge",
                        "price": 0.045,
                        "timeout": 500,
                    }
                }
            },
        },
    )
    assert refused_lines(tmp_path / "several.yaml", document) == [
        "server.port: must be an integer",
        "providers.backends.tencent.timeout: must be between 0.01 and 120.0",
        "providers.backends.tencent.sign_name: required (found unknown key sign_nam — misspelt?)",
    ]


def test_check_config_refuses_a_wrong_value_in_one_line(tmp_path):
    result = check_config("check-config", "--config", str(broken_config(tmp_path, port="abc")))
    assert_refused(result, "server.port: must be an integer")


def test_check_config_refuses_unreadable_and_malformed_files_in_one_line(tmp_path):
    missing = check_config("check-config", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1
    assert "nope.yaml" in missing.stderr and "Traceback" not in missing.stderr
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("server:\n  port: [1,\n", encoding="utf-8")
    result = check_config("check-config", "--config", str(malformed))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "invalid YAML" in result.stderr and "Traceback" not in result.stderr


def test_config_lookup_order_flag_then_environment_then_default(tmp_path):
    bad = str(broken_config(tmp_path, port=99999))
    good = str(ROOT / DEFAULT_CONFIG_PATH)
    assert_refused(
        check_config("check-config", env={"SMS_EDGE_CONFIG": bad}), "server.port: must be between 0 and 65535"
    )
    for args in (("check-config", "--config", good), ("--config", good, "check-config")):
        result = check_config(*args, env={"SMS_EDGE_CONFIG": bad})
        assert (result.returncode, result.stdout) == (0, "ok\n")
    assert_refused(
        check_config("check-config", "--config", bad, env={"SMS_EDGE_CONFIG": good}),
        "server.port: must be between 0 and 65535",
    )


def test_omitted_phone_windows_default_to_the_contracts_and_an_empty_list_turns_them_off(config_document):
    del config_document["ratelimit"]["phone"]
    windows = parse_config(config_document).ratelimit.phone
    assert [(w.limit, w.seconds) for w in windows] == [(1, 60), (5, 3600), (10, 86400)]
    assert parse_config(merge(config_document, {"ratelimit": {"phone": []}})).ratelimit.phone == ()


def test_the_readme_s_send_satisfies_the_production_example_s_template(tmp_path):
    """The README's curl (the seed's body) must not be a 400 against the production example."""
    config = load_config(production_example(tmp_path))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    body = json.loads(readme.split("-d '", 1)[1].split("'", 1)[0])
    declared = config.templates[body["template_id"]].params
    assert set(declared) <= set(body["params"]), f"template {body['template_id']} also needs {declared}"


def test_check_config_prints_every_problem_of_every_section_at_once(tmp_path):
    """Bounds, types, a carrier's own options, a misspelt key, a rule across fields, a list of
    values: each mistake is its own line, several in one section or one list element included."""
    document = merge(
        yaml.safe_load((ROOT / DEFAULT_CONFIG_PATH).read_text(encoding="utf-8")),
        {
            "server": {"port": 70000},
            "redis": {"mode": "sentinel"},
            "ratelimit": {"phone": [{"limit": 0, "seconds": "x"}]},
            "providers": {
                "backends": {
                    "mock": {"latency_ms": -5, "fail_rate": 2},
                    "tencent": {
                        "plugin": "tencent",
                        "price": 0.045,
                        "secret_id": "id",
                        "secret_kye": "key",
                        "sdk_app_id": 1400000000,
                        "sign_name": "SMS Edge",
                        "retries": 11,
                        "circuit": {"failures": 0},
                    },
                },
                "routes": [{"match": {"prefix": ["86170", "+86x"]}, "to": "mock"}],
            },
            "metrics": {"path": "metrics"},
            "admin": {"tokens": [{"name": "n" * 65, "token": "short"}]},
        },
    )
    document["accounts"] = [
        {"name": "demo\nforged", "api_key": "sk_demo_1", "api_secret": "short", "balance": "lots"}
    ]
    assert refused_lines(tmp_path / "many.yaml", document) == [
        "server.port: must be between 0 and 65535",
        "redis.sentinels: sentinel mode needs at least one host:port",
        "ratelimit.phone[0].limit: must be between 1 and 1000000",
        "ratelimit.phone[0].seconds: must be an integer",
        "providers.backends.mock.latency_ms: must be between 0 and 600000",
        "providers.backends.mock.fail_rate: must be between 0.0 and 1.0",
        "providers.backends.tencent.retries: must be between 0 and 10",
        "providers.backends.tencent.circuit.failures: must be between 1 and 1000",
        "providers.backends.tencent.secret_key: required (found unknown key secret_kye — misspelt?)",
        "providers.routes[0].match.prefix[0]: must be an E.164 prefix: + and digits",
        "providers.routes[0].match.prefix[1]: must be an E.164 prefix: + and digits",
        "metrics.path: must start with / and lie outside /api/",
        "accounts[0].name: may not hold control or format characters (line breaks, direction marks,"
        " zero-width spaces)",
        "accounts[0].api_secret: must be at least 12 characters",
        "accounts[0].balance: must be an amount in yuan",
        "admin.tokens[0].name: must be at most 64 characters",
        "admin.tokens[0].token: must be at least 16 characters",
    ]
