"""Money as the pages show it: one format, the same on the server and in the pages' script.

Two decimals, as a finance person reads yuan (1.50, not 1.5 or 1.500), and the third only where
the amount has it (a price of 0.045): the store keeps milli-yuan, and a page never rounds money away.
``YUAN_TEXTS`` is the table both ``gateway.money.yuan_text`` and the browser's ``SmsEdge.yuan``
(tests/test_pages_layout_browser.py) must follow.
"""

from __future__ import annotations

import pytest

from gateway.money import yuan_text, yuan_to_milli

# milli-yuan → what every page shows
YUAN_TEXTS = {
    0: "0.00",
    10: "0.01",
    45: "0.045",
    50: "0.05",
    1000: "1.00",
    1500: "1.50",
    98_850: "98.85",
    99_455: "99.455",
    99_600: "99.60",
    1_000_000_000_000: "1000000000.00",
}


@pytest.mark.parametrize(("milli", "text"), YUAN_TEXTS.items())
def test_yuan_text_has_two_decimals_and_a_third_only_when_needed(milli, text):
    assert yuan_text(milli) == text
    assert yuan_to_milli(text) == milli  # what is shown is the amount, to the milli-yuan
