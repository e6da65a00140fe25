"""What the driver counts from the history of a chat whose stream dropped."""

from __future__ import annotations

from loadtest.locust.driver import failover_loss


def test_failover_loss_counts_committed_messages_no_socket_received() -> None:
    committed = [1, 2, 5, 6, 9]
    assert failover_loss(committed, {1, 2, 5, 6, 9}) == 0
    assert failover_loss(committed, {1, 2, 9}) == 2  # 5 and 6 committed while it was down
    assert failover_loss(committed, {1, 2, 5, 6, 9, 12}) == 0  # seen, then edited away
    assert failover_loss([], set()) == 0
