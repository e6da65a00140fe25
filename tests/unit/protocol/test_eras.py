"""Eras: where each chats endpoint lives, and which era a version or a first frame implies."""

from __future__ import annotations

import pytest

from loadtest.protocol.eras import (
    PATHS,
    SIMULATED_VERSIONS,
    Era,
    era_from_frame,
    era_from_version,
    parse_version,
)


@pytest.mark.parametrize(
    ("version", "parsed"),
    [
        ("v2.37.1+abc1234", (2, 37, 1)),
        ("2.38", (2, 38, 0)),
        (" v2.31.0-devel+x ", (2, 31, 0)),
        ("latest", None),
        ("", None),
    ],
)
def test_a_version_parses_to_three_numbers(version: str, parsed: tuple[int, int, int]) -> None:
    assert parse_version(version) == parsed


@pytest.mark.parametrize(
    ("version", "era"),
    [
        ("v2.38.0", Era.D),
        ("v3.0.0", Era.D),
        ("v2.37.4+abc", Era.C),
        ("v2.36.9", None),  # A or B: only the first frame tells
        ("v2.38.0-devel+abc", None),
        ("unknown", None),
    ],
)
def test_a_version_implies_an_era_from_2_37_on(version: str, era: Era | None) -> None:
    assert era_from_version(version) == era


def test_the_simulators_versions_name_their_own_eras_where_a_version_can() -> None:
    assert era_from_version(SIMULATED_VERSIONS[Era.C]) == Era.C
    assert era_from_version(SIMULATED_VERSIONS[Era.D]) == Era.D
    assert era_from_version(SIMULATED_VERSIONS[Era.A]) is None
    assert era_from_version(SIMULATED_VERSIONS[Era.B]) is None


@pytest.mark.parametrize(
    ("frame", "era"),
    [
        (b'{"type":"message_part"}', Era.A),
        ('  \n[{"type":"status"}]', Era.B),
        (b"   ", None),
        (b"", None),
        (b"ping", None),
    ],
)
def test_the_first_frame_tells_an_envelope_from_an_array(frame: bytes | str, era: Era) -> None:
    assert era_from_frame(frame) == era


def test_each_era_mounts_chats_where_coder_does() -> None:
    assert PATHS[Era.A].chats() == "/api/experimental/chats"
    assert PATHS[Era.B].chats() == "/api/experimental/chats"
    assert PATHS[Era.C].chats() == PATHS[Era.D].chats() == "/api/v2/chats"
    assert PATHS[Era.D].stream("c1") == "/api/v2/chats/c1/stream"
    assert PATHS[Era.A].archive_by_post and not PATHS[Era.D].archive_by_post
    assert [era for era in Era if PATHS[era].org_scoped_models] == [Era.C, Era.D]
    assert [era for era in Era if PATHS[era].envelope_frames] == [Era.A]
