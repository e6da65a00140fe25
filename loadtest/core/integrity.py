"""One chat stream's integrity: era-D part numbering, step text against its commit, message fingerprints.

Apart from the turn state machine (``core/tracker.py``), which hands it the parts and commits
it sees and the turn they belong to. As ``docs/metrics.md`` defines it:
- era-D parts must number 1, 2, 3 ... within their (history_version, generation_attempt)
  episode: a missing number is a gap, a repeated one a duplicate, a late one out of order;
- the text (and reasoning) deltas of a step must add up (length and a running XXH3-64
  hash, never the text itself) to the committed message that closes it (era D: or to a
  prefix of it, a preview the commit cut short). A step is only compared when this
  connection saw it from its start: live, or replayed whole by an era-D snapshot (after its
  ``preview_reset``); eras A-C replay a step in progress only in part, so such a step is
  skipped;
- Coder re-sends a message whose row changed, with no revision on the wire (spec §9.1): a
  re-sent one is an update only when it reads differently (its fingerprint, CRC-32 of its JSON).
Every field it reads is checked for its type first: a wrong one is a ``decode`` error naming
the field, never an exception. Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any, Final, Protocol
from zlib import crc32

import orjson
from xxhash import xxh3_64, xxh3_64_intdigest

from loadtest.core.payloads import malformed
from loadtest.core.replicas import ReplicaTally
from loadtest.core.turn import Turn
from loadtest.protocol.events import MESSAGE_PART

#: A seq jump wider than this is counted as gaps at once instead of remembering each
#: missing number (a bogus seq must not cost memory).
MAX_MISSING: Final = 4096

#: A step's texts wait in a list and are folded into its length and hash this many at a
#: time: one join, encode and hash update per this many frames instead of per frame.
FOLD_TEXTS: Final = 32

#: What ``parts`` says of a run of parts: one was malformed (it was skipped), all carried
#: text, or some carried none (tool calls and results: the agent's steps want them).
MALFORMED: Final = 0
TEXT: Final = 1
NOT_TEXT: Final = 2


class IntegrityRecorder(Protocol):
    """What integrity needs of the recorder (``core.recorder.Recorder`` in a run)."""

    def integrity(self, name: str, n: int) -> None: ...
    def decode_error(self, reason: str, t: int) -> None: ...
    def message_update(self) -> None: ...


class StreamIntegrity:
    """The integrity checks of one chat's stream, across its connections."""

    __slots__ = (
        "_episode",
        "_episodes",
        "_finished",
        "_last_seq",
        "_missing",
        "_recorder",
        "_seen",
        "_step_broken",
        "_text_hash",
        "_text_length",
        "_texts",
        "replica",
        "step_texts",
        "text_known",
    )

    def __init__(self, recorder: IntegrityRecorder) -> None:
        self._recorder = recorder
        #: Era D: the episode (history_version, generation_attempt) parts now belong to, the
        #: highest seq seen in it, and the seqs skipped that may still come (out of order).
        self._episode: tuple[int, int] | None = None
        #: The episode a commit or preview_reset ended: no part of it (or before) may follow.
        self._finished: tuple[int, int] | None = None
        self._last_seq = 0
        self._missing: set[int] = set()
        #: Whether the current step was seen from its start; its text so far is counted in
        #: UTF-8 bytes, with its running hash: XXH3-64 (xxhash, ~0.05 ns a byte), not zlib's
        #: CRC-32 (0.3 ns a byte, a third of the text check on 160-byte parts), and as good
        #: at telling a lost or altered delta.
        self.text_known = False
        self._text_length = 0
        self._text_hash = xxh3_64()
        #: The step's latest texts, not yet in its length and hash (``FOLD_TEXTS``).
        self._texts: list[str] = []
        #: The meter's fast path's view of the text check (``TurnTracker.one_part``): the
        #: list a part's text joins while the step's text is known (then ``fold`` once it
        #: holds ``FOLD_TEXTS``), None while it is not.
        self.step_texts: list[str] | None = None
        #: Whether this stream speaks era D's episodes (a preview_reset was seen), and
        #: whether the step's parts broke their numbering (then a short text is a loss).
        self._episodes = False
        self._step_broken = False
        #: A fingerprint of each message seen (CRC-32 of its JSON).
        self._seen: dict[int, int] = {}
        #: The integrity tally of the replica its stream reads now (several replicas only).
        self.replica: ReplicaTally | None = None

    # ------------------------------------------------------------ what the tracker reports

    def connected(self, turn: Turn | None) -> None:
        """A new connection: its snapshot starts over; what the last one left open is a gap."""
        self.close_episode(turn)
        self._episode = self._finished = None
        self.text_known = False
        self.step_texts = None

    def new_step(self, turn: Turn | None) -> None:
        """A step boundary seen: what follows is a step seen from its start."""
        self.close_episode(turn)
        if self._episode is not None:
            self._finished = self._episode
        self.text_known = True
        self._text_length = 0
        self._text_hash.reset()
        self._texts.clear()
        self.step_texts = self._texts
        self._step_broken = False

    def preview_reset(self, turn: Turn | None) -> None:
        """Era D: the episode's parts are thrown away; the next step is seen whole."""
        self._episodes = True
        self.new_step(turn)

    def commit(self, turn: Turn | None, message: dict[str, Any]) -> None:
        """A committed message: an assistant one closes its step, whose text must be what
        the deltas added up to."""
        if self.text_known and message.get("role") == "assistant":
            self._compare_text(turn, message)
        self.new_step(turn)

    def history_reset(self) -> None:
        """The history follows again: a new baseline, no updates."""
        self._seen.clear()

    def seen_before(self, message_id: int, message: dict[str, Any], live: bool) -> bool:
        """True for a message this stream already had (live and reading differently: an
        update, counted); False for a new one."""
        fingerprint = _fingerprint(message)
        seen = self._seen.get(message_id)
        self._seen[message_id] = fingerprint
        if seen is None:
            return False
        if live and seen != fingerprint:
            self._recorder.message_update()  # its row changed; a copy is ignored
        return True

    def parts(self, parts: list[dict[str, Any]], turn: Turn | None, t: int) -> int:
        """Era-D numbering and the step's running text, for a run of ``message_part``s;
        ``MALFORMED``, ``TEXT`` or ``NOT_TEXT``.

        The common case (well-formed parts, numbered in order or not at all) is a few list
        comprehensions and one join per frame; anything else goes part by part."""
        if len(parts) == 1:
            try:
                body = parts[0][MESSAGE_PART]
                text = body["part"].get("text")
                seq = body.get("seq")
            except (KeyError, TypeError, AttributeError):
                self._each(parts, turn, t)
                return MALFORMED
            shape = TEXT if text is not None else NOT_TEXT
            if seq is not None and not self._in_order((body,), turn):
                self._each(parts, turn, t)
            elif self.text_known and text is not None:
                if type(text) is not str:
                    self._each(parts, turn, t, numbered=False)
                else:
                    texts = self._texts
                    texts.append(text)
                    if len(texts) >= FOLD_TEXTS:
                        self.fold()
            return shape
        if not parts:
            return TEXT
        try:
            texts = [event[MESSAGE_PART]["part"].get("text") for event in parts]
            numbered = parts[-1][MESSAGE_PART].get("seq") is not None
        except (KeyError, TypeError, AttributeError):
            self._each(parts, turn, t)
            return MALFORMED
        try:
            joined: str | None = "".join(texts)
        except TypeError:  # parts without text (tool calls and results) among them, or a bad one
            joined = None
        shape = TEXT if joined is not None else NOT_TEXT
        if numbered and not self._in_order([event[MESSAGE_PART] for event in parts], turn):
            self._each(parts, turn, t)
        elif self.text_known:
            if joined is None:
                if any(text is not None and type(text) is not str for text in texts):
                    self._each(parts, turn, t, numbered=False)
                    return shape
                joined = "".join(filter(None, texts))
            self._texts.append(joined)
            if len(self._texts) >= FOLD_TEXTS:
                self.fold()
        return shape

    def continues(self, body: dict[str, Any], seq: Any, turn: Turn) -> bool:
        """True, and noted, when one era-D part (``body``, numbered ``seq``) continues its
        open episode exactly: the fast path's check (``TurnTracker.one_part``). False, with
        nothing noted, for any other: then ``parts`` must take it."""
        episode = self._episode
        if seq != self._last_seq + 1 or episode is None:
            return False
        finished = self._finished
        if finished is not None and episode <= finished:
            return False
        try:  # (subscripts rather than ``get``: cheaper per frame)
            if body["history_version"] != episode[0] or body["generation_attempt"] != episode[1]:
                return False
        except KeyError:
            return False
        self._last_seq = seq
        turn.checked = True
        return True

    def close_episode(self, turn: Turn | None) -> None:
        """The episode is over: the seqs it skipped that never came are gaps."""
        if self._missing:
            self._count("seq_gaps", len(self._missing), turn)
            self._missing.clear()

    # ------------------------------------------------------------ the checks

    def _in_order(self, bodies: Any, turn: Turn | None) -> bool:
        """True, and noted, when era-D parts continue their episode exactly; False for the
        part-by-part check (a new episode, a break, or a malformed part)."""
        last, episode, finished = self._last_seq, self._episode, self._finished
        if episode is None or (finished is not None and episode <= finished):
            return False
        seqs = [body.get("seq") for body in bodies]
        if seqs != list(range(last + 1, last + 1 + len(seqs))):
            return False
        if {(b.get("history_version"), b.get("generation_attempt")) for b in bodies} != {episode}:
            return False
        self._last_seq = seqs[-1]
        if turn is not None:
            turn.checked = True
        return True

    def _each(
        self, parts: list[dict[str, Any]], turn: Turn | None, t: int, numbered: bool = True
    ) -> None:
        """``parts`` one part at a time, each field's type checked."""
        known = self.text_known
        self.fold()
        length, update = self._text_length, self._text_hash.update
        for event in parts:
            body = event.get(MESSAGE_PART)
            if type(body) is not dict:
                malformed(self._recorder, "message_part.message_part", "an object", body, t)
                continue
            seq = body.get("seq")
            if numbered and seq is not None and not self._numbered(body, seq, turn, t):
                continue  # a duplicate, or a part of an episode that is over
            if known:
                part = body.get("part")
                text = part.get("text") if type(part) is dict else None
                if type(text) is str:
                    data = text.encode()
                    length += len(data)
                    update(data)
        self._text_length = length

    def _numbered(self, body: dict[str, Any], seq: Any, turn: Turn | None, t: int) -> bool:
        """Check an era-D part's place; False for one whose text must not count again."""
        history, attempt = body.get("history_version"), body.get("generation_attempt")
        if type(seq) is not int or type(history) is not int or type(attempt) is not int:
            malformed(self._recorder, "message_part.seq", "integer seq and episode", seq, t)
            return True
        if turn is not None:
            turn.checked = True
        episode = (history, attempt)
        current = self._episode
        finished = self._finished
        if finished is not None and episode <= finished:
            self._count("seq_out_of_order", 1, turn)  # a part of an episode that ended
            return False
        if episode != current:
            if current is not None and episode < current:
                self._count("seq_out_of_order", 1, turn)  # a part of an earlier episode
                return False
            self.close_episode(turn)
            self._episode = episode
            self._last_seq = 0
        last = self._last_seq
        if seq == last + 1:
            self._last_seq = seq
            return True
        if seq > last:
            skipped = seq - last - 1
            if skipped > MAX_MISSING:
                self._count("seq_gaps", skipped, turn)
            else:
                self._missing.update(range(last + 1, seq))
            self._last_seq = seq
            return True
        if seq in self._missing:
            self._missing.discard(seq)
            self._count("seq_out_of_order", 1, turn)
            return True
        self._count("seq_duplicates", 1, turn)
        return False

    def _compare_text(self, turn: Turn | None, message: dict[str, Any]) -> None:
        """The committed text (its text and reasoning parts, in order) against the deltas.
        Era D: deltas that are a prefix of it are a preview cut short, not a mismatch (Coder's
        stream loop rejects an episode's parts once the commit's Sync is past it, so a
        relay that lags shows less of the step, never other text)."""
        content = message.get("content")
        texts = []
        if type(content) is list:
            for part in content:
                text = part.get("text") if type(part) is dict else None
                if type(text) is str:
                    texts.append(text)
        committed = "".join(texts).encode()
        self.fold()
        if turn is not None:
            turn.checked = True
        length, streamed = self._text_length, self._text_hash.intdigest()
        if len(committed) == length and xxh3_64_intdigest(committed) == streamed:
            return
        whole = self._episodes and not (self._step_broken or self._missing)
        short = length < len(committed)
        if whole and short and xxh3_64_intdigest(committed[:length]) == streamed:
            return
        self._count("content_mismatches", 1, turn)

    def fold(self) -> None:
        """The waiting texts into the step's length and running hash."""
        if self._texts:
            data = "".join(self._texts).encode()
            self._texts.clear()
            self._text_length += len(data)
            self._text_hash.update(data)

    def _count(self, name: str, n: int, turn: Turn | None) -> None:
        self._step_broken = True
        self._recorder.integrity(name, n)
        if self.replica is not None:
            self.replica.integrity_break(name, n)
        if turn is not None:
            turn.integrity_errors[name] = turn.integrity_errors.get(name, 0) + n


def _fingerprint(message: dict[str, Any]) -> int:
    """CRC-32 of a message as JSON, keys sorted (what orjson cannot write, by its repr)."""
    try:
        return crc32(orjson.dumps(message, option=orjson.OPT_SORT_KEYS))
    except TypeError:  # orjson.JSONEncodeError: an integer past 64 bits, say
        return crc32(repr(message).encode())
