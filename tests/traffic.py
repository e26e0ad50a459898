"""Steady sends against a gateway process while a test breaks something under it, and what the
answers say about the recovery."""

from __future__ import annotations

import json
import threading
import time

import requests

from tests.conftest import DEMO_HEADERS
from tests.gateway_process import GatewayProcess, api_state
from tests.redis_topologies import wait_for

__all__ = ["Traffic"]


class Traffic:
    """Sends one at a time from a thread until stopped, noting each answer's time and status."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.answers: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as http:
            n = 0
            while not self._stop.is_set():
                n += 1
                response = http.post(
                    f"{self.gateway.url}/api/sms/send",
                    headers=DEMO_HEADERS,
                    json={"phone": f"137{n:08d}", "template_id": "123456"},
                    timeout=30,
                )
                self.answers.append((time.monotonic(), response.status_code, response.text))
                time.sleep(0.01)

    def __enter__(self) -> Traffic:
        self._thread.start()
        wait_for(lambda: self.succeeded() >= 20, "sends before the fault")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def succeeded(self) -> int:
        return sum(status == 200 for _, status, _ in self.answers)

    def acknowledged(self) -> set[str]:
        """The message ids of the sends answered 200."""
        return {json.loads(text)["data"]["message_id"] for _, status, text in self.answers if status == 200}

    def check_kept_after_failover(self) -> None:
        """Every 200 is on the promoted replica (its record, and its price charged or held), and
        the account's balance and count agree with the records there: nothing acknowledged was lost."""
        kept, info = api_state(self.gateway)
        lost = self.acknowledged() - {mid for mid, status in kept.items() if status != "failed"}
        assert not lost, f"{len(lost)} acknowledged sends lost"
        charged = sum(status != "failed" for status in kept.values())
        assert info["balance"] == round(100 - 0.05 * charged, 2), (info, charged)
        assert info["total_sent"] == sum(status == "success" for status in kept.values()), info

    def check_counted_after_failover(self, total_sent: int) -> None:
        """Every 200 is counted, bar what asynchronous replication may drop at a promotion: the
        primary answers before its replica has the write, so the one send answered just before
        the kill (this traffic sends one at a time) may be missing; never more, never extra."""
        assert self.succeeded() - 1 <= total_sent <= self.succeeded(), (total_sent, self.succeeded())

    def recovery(self, fault_at: float, within: float) -> float:
        """Seconds from the fault to the first 200 after it, once a further second of traffic
        has been all 200s; every answer since the fault must be a 200 or a 503."""
        wait_for(
            lambda: self._first_success_after(fault_at) is not None,
            "a send succeeding after the fault",
            seconds=within + 5,
        )
        recovered_at = self._first_success_after(fault_at)
        assert recovered_at is not None
        time.sleep(1.5)
        after = [(status, text) for at, status, text in self.answers if at > fault_at]
        assert {status for status, _ in after} <= {200, 503}, after
        assert any(status == 503 for status, _ in after), "the outage should have been seen"
        settled = [status for at, status, _ in self.answers if at > recovered_at + 0.5]
        assert settled and set(settled) == {200}, settled
        return recovered_at - fault_at

    def _first_success_after(self, moment: float) -> float | None:
        return next((at for at, status, _ in self.answers if at > moment + 0.5 and status == 200), None)
