"""Tests for trellis_slack.bot.lifecycle: a question's life as a pure state machine, no I/O."""

from __future__ import annotations

import pytest

from trellis_slack.bot import lifecycle as lc
from trellis_slack.bot.lifecycle import (
    DeletionDecision,
    EditDecision,
    Phase,
    Status,
    Turn,
    TurnEvent,
)
from trellis_slack.trellis.protocol import (
    ChatMetadata,
    ErrorEvent,
    Interrupted,
    Message,
    Processing,
    TextDelta,
    ToolEvent,
    Visualization,
)

ALICE, BOB = "U0ALICE", "U0BOB"
CHART = Visualization("v1", "bar", {"x": [1]})


def run(events: list[TurnEvent], turn: Turn | None = None) -> tuple[Turn, list[lc.Effect]]:
    """Feed events one by one; the final turn and every effect, in order."""
    state = turn or Turn()
    effects: list[lc.Effect] = []
    for event in events:
        state, produced = lc.step(state, event)
        effects.extend(produced)
    return state, effects


def streaming(*events: TurnEvent) -> tuple[Turn, list[lc.Effect]]:
    return run([lc.Connected(), *events])


def finish(effects: list[lc.Effect]) -> Status | None:
    found = [e.status for e in effects if isinstance(e, lc.Finish)]
    assert len(found) <= 1, effects
    return found[0] if found else None


# --- statuses and transitions ---------------------------------------------------------------


def test_every_status_has_its_transitions() -> None:
    """Each status says where it may go; the terminal ones only come back by asking anew."""
    assert set(lc.TRANSITIONS) == set(Status)
    assert lc.TRANSITIONS[Status.DELETED] == {Status.RECEIVED}
    assert lc.TRANSITIONS[Status.DECLINED] == {Status.RECEIVED}


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        (Status.RECEIVED, Status.QUEUED, True),
        (Status.QUEUED, Status.ANSWERING, True),
        (Status.ANSWERING, Status.ANSWERED, True),
        (Status.FAILED, Status.QUEUED, True),  # Retry
        (Status.ANSWERED, Status.QUEUED, True),  # an edit re-asks
        (Status.FAILED, Status.ANSWERING, False),  # Retry must queue first (thread order)
        (Status.DELETED, Status.ANSWERING, False),  # deleted while it waited: never asked
        (Status.DROPPED, Status.QUEUED, False),
        (Status.ANSWERING, Status.DELETED, False),  # stopped first, then deleted
        (Status.DECLINED, Status.QUEUED, False),
    ],
)
def test_transitions(old: Status, new: Status, allowed: bool) -> None:
    """Only the changes a question's life allows are allowed."""
    assert lc.may_change(old, new) is allowed
    assert (old in lc.PREDECESSORS[new]) is allowed


# --- an answer's stream ----------------------------------------------------------------------


def test_progress_and_deltas_show_then_the_answer() -> None:
    """Statuses and text are shown as they come; the final message is the answer."""
    turn, effects = streaming(
        lc.Frame(ChatMetadata("chat-1", "m-1")),
        lc.Frame(Processing("running_query")),
        lc.Frame(TextDelta("Hel")),
        lc.Frame(TextDelta("lo")),
        lc.Frame(Message("Hello", "m-2")),
    )
    assert effects[0] == lc.RememberChat(ChatMetadata("chat-1", "m-1"))
    assert effects[1:4] == [
        lc.ShowProgress("running_query", ""),
        lc.ShowProgress("running_query", "Hel"),
        lc.ShowProgress("running_query", "Hello"),
    ]
    assert lc.ShowAnswer("Hello", (), "m-2") in effects
    assert finish(effects) is Status.ANSWERED
    assert turn.phase is Phase.ENDED


def test_tool_events_are_kept_as_steps_and_shown_until_stop() -> None:
    """Each tool event is a step to keep; after Stop it is kept but no longer shown."""
    call = ToolEvent("tool_call", {"id": "c1", "input": {"sql": "SELECT 1"}})
    turn, effects = streaming(lc.Frame(call))
    assert effects == [lc.ShowStep(call)]
    assert turn.phase is Phase.STREAMING
    _, effects = streaming(lc.StopClicked(ALICE), lc.Frame(call))
    assert effects[-1] == lc.ShowStep(call, show=False)


def test_visualizations_are_shown_in_arrival_order() -> None:
    """Each chart is shown when it arrives, before the answer."""
    other = Visualization("v2", "line", {})
    _, effects = streaming(lc.Frame(CHART), lc.Frame(other), lc.Frame(Message("done", None)))
    assert effects[:2] == [lc.ShowVisualization(CHART), lc.ShowVisualization(other)]


def test_trellis_error_fails_with_its_retry_advice() -> None:
    """An error frame is a failure; Retry follows Trellis's own ``retryable``."""
    _, effects = streaming(lc.Frame(ErrorEvent("Rate limited", retryable=True)))
    failure = next(e for e in effects if isinstance(e, lc.ShowFailure))
    assert failure.retry is True
    assert finish(effects) is Status.FAILED
    _, effects = streaming(lc.Frame(ErrorEvent("nope", retryable=False)))
    assert next(e for e in effects if isinstance(e, lc.ShowFailure)).retry is False


def test_seed_error_that_only_an_admin_can_fix_offers_no_retry() -> None:
    """The seed API sends no ``retryable``: a missing datasource gets no Retry, others do."""
    _, effects = streaming(lc.Frame(ErrorEvent("No datasource connected")))
    failure = next(e for e in effects if isinstance(e, lc.ShowFailure))
    assert failure.retry is False
    assert "TRELLIS_INTEGRATION_ID" in failure.message or "integration" in failure.message
    _, effects = streaming(lc.Frame(ErrorEvent("Something broke")))
    assert next(e for e in effects if isinstance(e, lc.ShowFailure)).retry is True


def test_a_stream_that_ends_without_a_final_frame_fails_with_retry() -> None:
    """No final message and no Stop: a failure with Retry, never a silent end."""
    _, effects = streaming(lc.Frame(TextDelta("half")), lc.StreamEnded())
    assert lc.ShowFailure(lc.NO_FINAL, retry=True) in effects
    assert finish(effects) is Status.FAILED


def test_a_failure_ends_the_turn_at_once() -> None:
    """A time-out or an unreadable final frame (`Failed`) ends the turn; later frames change nothing."""
    turn, effects = streaming(lc.Failed("Trellis took too long to answer.", retryable=True))
    assert finish(effects) is Status.FAILED
    _, later = lc.step(turn, lc.Frame(Message("late", None)))
    assert later == ()


# --- the races test_races.py pins end to end --------------------------------------------------


def test_stop_while_streaming_interrupts_and_hides_what_is_in_flight() -> None:
    """Stop interrupts; progress after it is not shown, charts are held; Trellis's ack ends it."""
    turn, effects = streaming(lc.Frame(TextDelta("a")), lc.StopClicked(ALICE))
    assert effects[-1] == lc.Interrupt()
    turn, after = run([lc.Frame(TextDelta("b")), lc.Frame(Processing("x")), lc.Frame(CHART)], turn)
    assert after == []
    assert turn.held == (CHART,)
    turn, ended = run([lc.Frame(Interrupted())], turn)
    assert ended == [lc.ShowStopped(ALICE, None, retry=True), lc.Finish(Status.STOPPED)]


def test_a_final_answer_that_beats_stop_is_shown_with_its_held_charts() -> None:
    """Stop crossed the final answer: Trellis kept it, so it is shown, and the clicker told."""
    turn, _ = streaming(lc.StopClicked(ALICE), lc.Frame(CHART))
    _, effects = run([lc.Frame(Message("the answer", None))], turn)
    assert effects == [
        lc.ShowAnswer("the answer", (CHART,)),
        lc.Finish(Status.ANSWERED),
        lc.Tell(ALICE, lc.ALREADY_COMPLETE),
    ]


def test_stop_after_the_answer_ended_changes_nothing_and_says_so() -> None:
    """A click on a finished answer only tells the clicker; nothing is interrupted."""
    turn, _ = streaming(lc.Frame(Message("done", None)))
    _, effects = lc.step(turn, lc.StopClicked(BOB))
    assert effects == (lc.Tell(BOB, lc.ALREADY_OVER),)


def test_a_second_stop_click_changes_nothing() -> None:
    """Only the first Stop interrupts; the second clicker is told it is being stopped."""
    turn, _ = streaming(lc.StopClicked(ALICE))
    turn2, effects = lc.step(turn, lc.StopClicked(BOB))
    assert effects == (lc.Tell(BOB, lc.ALREADY_OVER),)
    assert turn2.stop == turn.stop


def test_stop_while_queued_for_a_connection_sends_nothing_then_interrupts_if_sent() -> None:
    """Stop before the question was sent interrupts nothing; if it gets sent anyway, at once."""
    turn, effects = run([lc.StopClicked(ALICE)])
    assert effects == []
    assert turn.phase is Phase.CONNECTING
    _, connected = lc.step(turn, lc.Connected())
    assert connected == (lc.Interrupt(),)
    _, never_sent = lc.step(turn, lc.StreamEnded())
    assert never_sent == (lc.ShowStopped(ALICE, None, retry=True), lc.Finish(Status.STOPPED))


@pytest.mark.parametrize("reason", ["The question was edited.", "The question was deleted."])
def test_edit_or_delete_while_streaming_stops_the_answer_with_the_reason(reason: str) -> None:
    """An edit or deletion stops the answer in progress; the thread says why, nobody clicked."""
    turn, effects = streaming(lc.Frame(TextDelta("a")), lc.StopFor(reason))
    assert effects[-1] == lc.Interrupt()
    _, ended = run([lc.Frame(Interrupted())], turn)
    assert ended == [lc.ShowStopped(None, reason), lc.Finish(Status.STOPPED)]


def test_shutdown_ends_an_answer_as_a_failure_with_retry() -> None:
    """Stopped by a restart, not a person: a failure with Retry (nobody chose to stop it)."""
    turn, _ = streaming(lc.StopFor("I was restarted.", offers_retry=True))
    _, ended = run([lc.Frame(Interrupted())], turn)
    assert ended == [lc.ShowFailure("I was restarted.", retry=True), lc.Finish(Status.FAILED)]


def test_stop_by_the_bot_after_the_answer_ended_says_nothing() -> None:
    """An edit arriving after the answer finished stops nothing and tells nobody."""
    turn, _ = streaming(lc.Frame(Message("done", None)))
    assert lc.step(turn, lc.StopFor("The question was edited.")) == (turn, ())


# --- what edits, deletions and Retry mean -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "asked", "mentioned", "changed", "decision"),
    [
        (None, False, False, True, EditDecision.IGNORE),  # someone else's message
        (None, False, True, True, EditDecision.NEW_QUESTION),  # edited to mention the bot
        (Status.DECLINED, False, True, True, EditDecision.NEW_QUESTION),
        (Status.DROPPED, True, False, True, EditDecision.NEW_QUESTION),
        (Status.ANSWERED, True, True, False, EditDecision.IGNORE),  # only the mention changed
        (Status.QUEUED, False, False, True, EditDecision.UPDATE_TEXT),  # asked when its turn comes
        (Status.RECEIVED, False, True, True, EditDecision.UPDATE_TEXT),
        (Status.ANSWERING, True, True, True, EditDecision.REASK),
        (Status.ANSWERED, True, False, True, EditDecision.REASK),
        (Status.FAILED, False, True, True, EditDecision.REASK),
    ],
)
def test_what_an_edit_means(
    status: Status | None, asked: bool, mentioned: bool, changed: bool, decision: EditDecision
) -> None:
    """Edits re-ask what Trellis has, update what waits, and ignore the rest."""
    assert lc.decide_edit(status, asked=asked, mentioned=mentioned, changed=changed) is decision


@pytest.mark.parametrize(
    ("status", "asked", "decision"),
    [
        (None, False, DeletionDecision.IGNORE),
        (Status.DELETED, True, DeletionDecision.IGNORE),
        (Status.DROPPED, True, DeletionDecision.IGNORE),
        (Status.QUEUED, False, DeletionDecision.FORGET),  # still waiting: never asked
        (Status.QUEUED, True, DeletionDecision.DELETE),  # Retry queued: Trellis has it
        (Status.ANSWERING, True, DeletionDecision.DELETE),
        (Status.ANSWERED, True, DeletionDecision.DELETE),
    ],
)
def test_what_a_deletion_means(
    status: Status | None, asked: bool, decision: DeletionDecision
) -> None:
    """A deletion forgets what never reached Trellis and deletes in Trellis what did."""
    assert lc.decide_deletion(status, asked=asked) is decision


@pytest.mark.parametrize(
    ("status", "answering", "first_click", "allowed"),
    [
        (Status.FAILED, False, True, True),
        (Status.FAILED, False, False, False),  # a double click, or a second person
        (Status.FAILED, True, True, False),  # already being answered again
        (Status.STOPPED, False, True, True),  # stopped by a person: Retry asks again
        (Status.STOPPED, False, False, False),
        (Status.ANSWERED, False, True, False),
        (Status.QUEUED, False, True, False),  # the first Retry already queued it
        (None, False, True, False),
    ],
)
def test_retry_asks_once_per_failure(
    status: Status | None, answering: bool, first_click: bool, allowed: bool
) -> None:
    """Retry asks again only a failed or stopped question, once, never while it is answered."""
    assert lc.may_retry(status, answering=answering, first_click=first_click) is allowed
