"""The deployment state machine, independent of any database."""

from __future__ import annotations

from itertools import pairwise

import pytest

from budcluster import lifecycle
from budcluster.errors import PermanentError
from budcluster.lifecycle import DeploymentStatus as S


def test_happy_path_is_legal() -> None:
    path = [S.PENDING, S.PLANNING, S.TRANSFERRING, S.DEPLOYING, S.READY, S.DELETING, S.DELETED]
    for current, requested in pairwise(path):
        lifecycle.check_transition(current, requested)


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        (S.PENDING, S.READY),
        (S.PENDING, S.DEPLOYING),
        (S.TRANSFERRING, S.READY),
        (S.DELETED, S.READY),
        (S.DELETED, S.DELETING),
        (S.DELETING, S.READY),
        (S.READY, S.READY),
        (S.FAILED, S.READY),
    ],
)
def test_illegal_moves_raise_with_the_allowed_targets(current: S, requested: S) -> None:
    with pytest.raises(lifecycle.IllegalTransition) as caught:
        lifecycle.check_transition(current, requested)
    assert caught.value.current is current
    assert caught.value.requested is requested
    for allowed in lifecycle.LEGAL_TRANSITIONS[current]:
        assert allowed.value in str(caught.value)
    assert isinstance(caught.value, PermanentError)


def test_no_status_moves_to_itself() -> None:
    for status in S:
        assert not lifecycle.is_legal(status, status)


def test_every_status_can_reach_deleted() -> None:
    # Nothing may get stuck: from any status there is a path to "deleted".
    for start in S:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in lifecycle.LEGAL_TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert S.DELETED in seen or start is S.DELETED, start


def test_parse_status_names_the_valid_values() -> None:
    assert lifecycle.parse_status("ready") is S.READY
    with pytest.raises(PermanentError, match="use one of: pending, planning"):
        lifecycle.parse_status("running")
