"""The one rule for callback URLs (``gateway.callbacks.urls``): inside the account's prefixes,
same host and port, https unless the prefix is http."""

from __future__ import annotations

import pytest

from gateway.callbacks.urls import (
    MAX_PREFIXES,
    CallbackUrlRefused,
    check_callback_url,
    check_prefixes,
    join_prefixes,
    split_prefixes,
)

PREFIXES = ("https://hooks.example.com/sms/", "http://10.0.0.5:8080/cb")


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/sms/",
        "https://hooks.example.com/sms/delivered?team=a",
        "http://10.0.0.5:8080/cb",
        "http://10.0.0.5:8080/cb/x",
    ],
)
def test_a_url_inside_a_prefix_is_kept(url):
    assert check_callback_url(url, PREFIXES) == url


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://hooks.example.com/sms/", "callback_prefixes 之一"),  # https prefix: not http
        ("https://hooks.example.com/other", "callback_prefixes 之一"),
        ("https://hooks.example.com.evil.net/sms/", "callback_prefixes 之一"),
        ("https://hooks.example.com@evil.net/sms/", "绝对地址"),
        ("http://10.0.0.5:80801/cb", "绝对地址"),  # not a port
        ("http://10.0.0.5:8080@evil/cb", "绝对地址"),
        ("ftp://hooks.example.com/sms/", "绝对地址"),
        ("/sms/", "绝对地址"),
        ("https://hooks.example.com/sms/ x", "绝对地址"),
        ("https://hooks.example.com/sms/\n", "绝对地址"),
        ("", "1-2048"),
        ("https://hooks.example.com/sms/" + "a" * 2048, "1-2048"),
        (42, "1-2048"),
    ],
)
def test_a_url_outside_the_prefixes_is_refused_with_the_reason(url, said):
    with pytest.raises(CallbackUrlRefused) as refused:
        check_callback_url(url, PREFIXES)
    assert said in refused.value.reason
    assert str(refused.value).startswith("callback_url: ")  # English for the CLI and the config


def test_without_prefixes_no_url_is_accepted():
    with pytest.raises(CallbackUrlRefused, match="no callback_prefixes"):
        check_callback_url("https://hooks.example.com/sms/", ())


@pytest.mark.parametrize(
    "prefixes",
    [
        ["hooks.example.com/sms"],
        ["https:///sms"],
        ["mailto:ops@example.com"],
        ["https://a.example.com/", "https://a.example.com/"],
        [f"https://h{n}.example.com/" for n in range(MAX_PREFIXES + 1)],
    ],
)
def test_a_prefix_must_be_an_absolute_http_url_each_once(prefixes):
    with pytest.raises(CallbackUrlRefused, match="callback_prefixes"):
        check_prefixes(prefixes)


def test_prefixes_are_kept_as_one_text_and_read_back():
    assert split_prefixes(join_prefixes(PREFIXES)) == PREFIXES
    assert split_prefixes("") == split_prefixes(None) == ()
