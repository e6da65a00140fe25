"""Watch lag: a chat's status change seen on its stream and on a watch socket, paired.

``docs/metrics.md`` (Watch streams): for a status change seen on both, the watch socket's
arrival minus the chat stream's (negative when the watch came first). Pure: times come in.

Pairing per chat: the stream's latest live status waits for each socket to claim it once; a
watch event that finds no unclaimed match waits (bounded) for the stream to catch up. So a
chat that runs twice never pairs turn 2's ``running`` on the watch with turn 1's on the
stream, and two tabs each give their own sample.

Memory is spent only on chats whose stream this side follows (``stream_saw`` names them,
``forget`` frees them): a watch socket hears of every chat of its account, and with many
users on one account nearly all of those are someone else's. Such events wait in one small
ring (a chat's own events can beat its creation's answer to the watch socket) and fall out
of it unpaired.
"""

from __future__ import annotations

from collections import deque
from typing import Final

#: Watch events still waiting for their stream event, per chat; older ones are dropped.
MAX_PENDING: Final = 16
#: Chats followed at once; the least recently seen is forgotten first. ``forget`` keeps
#: the live set to the chats being driven; this bound only guards against a caller that
#: never forgets.
MAX_CHATS: Final = 4096
#: Watch events about chats not (yet) followed, newest kept: enough for the events of a chat
#: the watch announced before its creator heard back, without keeping everyone else's.
RECENT: Final = 64


class _TabPairing:
    __slots__ = ("claimed", "pending", "status", "t")

    def __init__(self) -> None:
        self.status: str | None = None
        self.t = 0
        #: Sockets that already paired the stream's latest status.
        self.claimed: set[int] = set()
        #: (status, arrival, socket) of watch events the stream has not shown yet.
        self.pending: deque[tuple[str, int, int]] = deque(maxlen=MAX_PENDING)


class WatchLag:
    """Pairs status changes of the chats a user (or process) follows; each method answers
    the lags (ns) found. Bounded: ``MAX_CHATS`` x ``MAX_PENDING`` + ``RECENT`` events."""

    def __init__(self) -> None:
        self._chats: dict[str, _TabPairing] = {}
        #: (chat, status, arrival, socket) about chats not followed, oldest first.
        self._recent: deque[tuple[str, str, int, int]] = deque(maxlen=RECENT)

    def __len__(self) -> int:
        """Chats followed now."""
        return len(self._chats)

    def _follow(self, chat_id: str) -> _TabPairing:
        chat = self._chats.pop(chat_id, None)
        if chat is None:
            chat = _TabPairing()
            if len(self._chats) >= MAX_CHATS:
                del self._chats[next(iter(self._chats))]
            if any(seen[0] == chat_id for seen in self._recent):
                kept = [seen for seen in self._recent if seen[0] != chat_id]
                chat.pending.extend(seen[1:] for seen in self._recent if seen[0] == chat_id)
                self._recent = deque(kept, maxlen=RECENT)
        self._chats[chat_id] = chat  # most recent last
        return chat

    def forget(self, chat_id: str) -> None:
        """The chat's stream is closed for good: no more pairs for it."""
        self._chats.pop(chat_id, None)

    def stream_saw(self, chat_id: str, status: str, t: int) -> list[int]:
        """A live status event on the chat's stream at ``t``: the chat is followed from now
        (its watch events of the last moments included) until ``forget``."""
        chat = self._follow(chat_id)
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
        chat = self._chats.get(chat_id)
        if chat is None:
            self._recent.append((chat_id, status, t, socket))
            return []
        if chat.status == status and socket not in chat.claimed:
            chat.claimed.add(socket)
            return [t - chat.t]
        chat.pending.append((status, t, socket))
        return []
