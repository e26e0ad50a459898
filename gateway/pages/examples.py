"""The docs page's copy-and-run examples: the seed's own, pointed at this gateway.

Built here as plain strings rather than in the template, so Jinja escapes them exactly once (a
``{% set %}`` block would be trusted markup, and ``<?php`` would vanish into the HTML). Only the
address changes from the seed's text; the credentials stay the seed's placeholders.
"""

from __future__ import annotations

__all__ = ["code_examples"]

_CURL_SEND = """\
curl -X POST "{base}/api/sms/send" \\
-H "X-API-Key: {key}" \\
-H "X-API-Secret: {secret}" \\
-H "Content-Type: application/json" \\
-d '{{"phone": "13800138000", "template_id": "123456", "params": {{"code": "1234"}}}}'"""

_CURL_RECORDS = """\
curl -G "{base}/api/sms/records" \\
-H "X-API-Key: {key}" \\
-H "X-API-Secret: {secret}" \\
--data-urlencode "page=1" \\
--data-urlencode "per_page={per_page}" \\
--data-urlencode "status=success\""""

_CURL_ACCOUNT = """\
curl "{base}/api/account/info" \\
-H "X-API-Key: {key}" \\
-H "X-API-Secret: {secret}\""""

_PHP = """\
<?php
$apiKey = 'your_api_key';
$apiSecret = 'your_api_secret';
$data = [
    'phone' => '13800138000',
    'template_id' => '123456',
    'params' => ['code' => '1234']
];
$ch = curl_init('{base}/api/sms/send');
curl_setopt($ch, CURLOPT_POST, true);
curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($data));
curl_setopt($ch, CURLOPT_HTTPHEADER, [
    'Content-Type: application/json',
    'X-API-Key: ' . $apiKey,
    'X-API-Secret: ' . $apiSecret
]);
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
$response = curl_exec($ch);
curl_close($ch);
$result = json_decode($response, true);
print_r($result);"""

_PYTHON = """\
import requests
api_key = 'your_api_key'
api_secret = 'your_api_secret'
response = requests.post(
    '{base}/api/sms/send',
    json={{
        'phone': '13800138000',
        'template_id': '123456',
        'params': {{'code': '1234'}}
    }},
    headers={{
        'X-API-Key': api_key,
        'X-API-Secret': api_secret
    }}
)
print(response.json())"""

_NODE = """\
const axios = require('axios');
const apiKey = 'your_api_key';
const apiSecret = 'your_api_secret';
axios.post('{base}/api/sms/send', {{
  phone: '13800138000',
  template_id: '123456',
  params: {{ code: '1234' }}
}}, {{
  headers: {{
    'X-API-Key': apiKey,
    'X-API-Secret': apiSecret
  }}
}}).then(response => {{
  console.log(response.data);
}}).catch(error => {{
  console.error(error);
}});"""


def code_examples(base: str, key: str, secret: str, per_page: int) -> dict[str, str]:
    values = {"base": base, "key": key, "secret": secret, "per_page": per_page}
    templates = {
        "curl_send": _CURL_SEND,
        "curl_records": _CURL_RECORDS,
        "curl_account": _CURL_ACCOUNT,
        "php": _PHP,
        "python": _PYTHON,
        "node": _NODE,
    }
    return {name: text.format(**values) for name, text in templates.items()}
