"""Watch lag: a chat's status change seen on its stream and on a watch socket, paired.

``docs/metrics.md`` (Watch streams): for a status change seen on both, the watch socket's
arrival minus the chat stream's (negative when the watch came first). Pure: times come in.

Pairing per chat: the stream's latest live status waits for each socket to claim it once; a
watch event that finds no unclaimed match waits (bounded) for the stream to catch up. So a
chat that runs twice never pairs turn 2's ``running`` on the watch with turn 1's on the
stream, and two tabs each give their own sample.
"""

from __future__ import annotations

from collections import deque
from typing import Final

#: Watch events still waiting for their stream event, per chat; older ones are dropped.
MAX_PENDING: Final = 16
#: Chats remembered; the least recently seen is forgotten first.
MAX_CHATS: Final = 4096


class _Chat:
    __slots__ = ("claimed", "pending", "status", "t")

    def __init__(self) -> None:
        self.status: str | None = None
        self.t = 0
        #: Sockets that already paired the stream's latest status.
        self.claimed: set[int] = set()
        #: (status, arrival, socket) of watch events the stream has not shown yet.
        self.pending: deque[tuple[str, int, int]] = deque(maxlen=MAX_PENDING)


class WatchLag:
    """Pairs status changes of one user's chats; each method answers the lags (ns) found."""

    def __init__(self) -> None:
        self._chats: dict[str, _Chat] = {}

    def _chat(self, chat_id: str) -> _Chat:
        chat = self._chats.pop(chat_id, None)
        if chat is None:
            chat = _Chat()
            if len(self._chats) >= MAX_CHATS:
                del self._chats[next(iter(self._chats))]
        self._chats[chat_id] = chat  # most recent last
        return chat

    def stream_saw(self, chat_id: str, status: str, t: int) -> list[int]:
        """A live status event on the chat's stream at ``t``."""
        chat = self._chat(chat_id)
        chat.status, chat.t = status, t
        chat.claimed = set()
        lags: list[int] = []
        kept: deque[tuple[str, int, int]] = deque(maxlen=MAX_PENDING)
        for waiting, at, socket in chat.pending:
            if waiting == status and socket not in chat.claimed:
                chat.claimed.add(socket)
                lags.append(at - t)  # the watch came first: negative
            else:
                kept.append((waiting, at, socket))
        chat.pending = kept
        return lags

    def watch_saw(self, chat_id: str, status: str, t: int, socket: int) -> list[int]:
        """A ``status_change`` on watch socket ``socket`` at ``t``."""
        chat = self._chat(chat_id)
        if chat.status == status and socket not in chat.claimed:
            chat.claimed.add(socket)
            return [t - chat.t]
        chat.pending.append((status, t, socket))
        return []
