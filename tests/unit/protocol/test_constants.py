"""``go_quote``: a call id quoted as Go's ``%q`` quotes it in Coder's tool-result errors."""

from __future__ import annotations

from loadtest.protocol.constants import TOOL_RESULT_MISSING, go_quote


def test_quotes_and_backslashes_are_escaped_as_go_does() -> None:
    assert go_quote("call_1") == '"call_1"'
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert TOOL_RESULT_MISSING[1].format(id=go_quote("x")) == 'Missing result for tool call "x".'
