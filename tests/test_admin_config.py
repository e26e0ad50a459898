"""``admin.tokens``: checked at load (check-config), kept only as keyed hashes, reloadable by SIGHUP."""

from __future__ import annotations

import pytest
import requests
import yaml

from gateway.admin import auth as auth_module
from gateway.admin.auth import token_name
from gateway.config.loader import load_config, parse_config
from gateway.config.reader import ConfigError
from tests.conftest import default_document, merge
from tests.gateway_process import run_py
from tests.test_reload import document_for, hup, rewrite, start  # noqa: F401 (start: a fixture)

TOKEN = "ops-token-0123456789abcdef"


def with_tokens(*tokens: dict) -> dict:
    return merge(default_document(), {"admin": {"tokens": list(tokens)}})


def test_tokens_are_kept_only_as_hashes_and_match_by_name():
    config = parse_config(
        with_tokens({"name": "ops-alice", "token": TOKEN}, {"name": "ops-bob", "token": TOKEN[::-1]})
    )
    assert [token.name for token in config.admin.tokens] == ["ops-alice", "ops-bob"]
    assert TOKEN not in repr(config) and TOKEN[::-1] not in repr(config)
    assert all(token.token_hash.startswith("hmac-sha256$") for token in config.admin.tokens)
    assert token_name(TOKEN, config.admin.tokens) == "ops-alice"
    assert token_name(TOKEN[::-1], config.admin.tokens) == "ops-bob"
    for wrong in ("", TOKEN + "x", TOKEN[:-1], TOKEN.upper()):
        assert token_name(wrong, config.admin.tokens) is None


def test_no_admin_section_means_no_tokens():
    assert parse_config(default_document()).admin.tokens == ()


@pytest.mark.parametrize(
    ("tokens", "error"),
    [
        ([{"name": "ops", "token": "short-token"}], "admin.tokens[0].token: must be at least 16 characters"),
        ([{"name": "ops", "token": ""}], "admin.tokens[0].token: required"),
        ([{"name": "ops"}], "admin.tokens[0].token: required"),
        ([{"token": TOKEN}], "admin.tokens[0].name: required"),
        (
            [{"name": "ops", "token": TOKEN}, {"name": "ops", "token": TOKEN + "2"}],
            "admin.tokens[1].name: duplicate name",
        ),
        (
            [{"name": "a", "token": TOKEN}, {"name": "b", "token": TOKEN}],
            "admin.tokens[1].token: duplicate token",
        ),
        ([{"name": "ops", "token": TOKEN, "role": "root"}], "admin.tokens[0].role: unknown key"),
        ("ops", "admin.tokens: must be a list"),
    ],
)
def test_bad_tokens_are_refused_naming_the_key(tokens, error):
    with pytest.raises(ConfigError) as refused:
        parse_config(merge(default_document(), {"admin": {"tokens": tokens}}))
    assert str(refused.value) == error


def test_tokens_come_from_the_environment_and_check_config_refuses_an_unset_one(tmp_path, monkeypatch):
    path = tmp_path / "gateway.yaml"
    document = with_tokens({"name": "ops", "token": "${SMS_EDGE_T_ADMIN_TOKEN}"})
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    monkeypatch.setenv("SMS_EDGE_T_ADMIN_TOKEN", TOKEN)
    assert token_name(TOKEN, load_config(path).admin.tokens) == "ops"
    monkeypatch.delenv("SMS_EDGE_T_ADMIN_TOKEN")
    result = run_py("check-config", "--config", path)
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "admin.tokens[0].token: required (SMS_EDGE_T_ADMIN_TOKEN is not set)",
    )


def test_a_reload_turns_the_admin_api_on_and_retires_a_token(tmp_path, start):  # noqa: F811
    document = document_for(tmp_path)
    gateway = start(document)
    url, headers = f"{gateway.url}/admin/api/accounts", {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(url, headers=headers, timeout=10).status_code == 404
    rewrite(gateway, merge(document, {"admin": {"tokens": [{"name": "ops", "token": TOKEN}]}}))
    hup(gateway)
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    other = TOKEN[::-1]
    rewrite(gateway, merge(document, {"admin": {"tokens": [{"name": "ops2", "token": other}]}}))
    hup(gateway, count=2)
    assert requests.get(url, headers=headers, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Bearer {other}"}, timeout=10).status_code == 200
    assert "restart" not in gateway.log.read_text()  # admin.tokens is applied, not kept


def test_every_configured_token_is_checked_whether_or_not_one_matched(monkeypatch):
    """A refused token costs what an accepted one does: one constant-time check per token, always."""
    config = parse_config(with_tokens(*({"name": f"ops-{n}", "token": f"{TOKEN}-{n}"} for n in range(4))))
    checked: list[str] = []
    real = auth_module.verify_secret

    def counting(secret: str, stored: str) -> bool:
        checked.append(stored)
        return real(secret, stored)

    monkeypatch.setattr(auth_module, "verify_secret", counting)
    for presented, name in ((f"{TOKEN}-0", "ops-0"), (f"{TOKEN}-3", "ops-3"), ("not-a-token-at-all!", None)):
        checked.clear()
        assert token_name(presented, config.admin.tokens) == name
        assert checked == [token.token_hash for token in config.admin.tokens]
