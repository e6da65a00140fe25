"""``scrub``: a database URL's password never reaches an error or log line, however quoted."""

from __future__ import annotations

from loadtest.trace.export_db import scrub


def test_the_password_goes_plain_and_percent_quoted() -> None:
    url = "postgres://coder:p%40ss%2Fw0rd@db:5432/coder"
    text = 'connection to "db" failed for coder:p%40ss%2Fw0rd (password p@ss/w0rd rejected)'
    scrubbed = scrub(text, url)
    assert "p@ss/w0rd" not in scrubbed and "p%40ss%2Fw0rd" not in scrubbed
    assert scrubbed.count("***") == 2 and scrubbed.startswith('connection to "db" failed')


def test_a_url_without_a_password_or_a_bad_url_leaves_the_text() -> None:
    assert scrub("no route to db", "postgres://coder@db/coder") == "no route to db"
    assert scrub("no route to db", "postgres://[bad") == "no route to db"
