"""The alert gate: the first alert of a kind in a window goes out, the rest are counted and named
by the next one (or by the timer once the window passed); kinds are gated apart."""
import pytest

from mm_core.alertgate import AlertGate

W = 1_000


def test_the_first_of_a_window_goes_out_and_the_next_names_what_was_held_back():
    gate = AlertGate(W)
    assert gate.admit("a", 0) == 0
    assert [gate.admit("a", t) for t in (1, 2, 999)] == [None, None, None]
    assert gate.admit("b", 5) == 0                  # another kind: its own window
    assert gate.due(999) == []                      # a's window has not passed
    assert gate.admit("a", 1_000) == 3
    assert gate.state_items() == [("a", 1_000, 0), ("b", 5, 0)]


def test_the_timer_names_a_window_that_passed_with_alerts_held_back_once():
    gate = AlertGate(W)
    gate.admit("a", 0)
    gate.admit("a", 10)
    gate.admit("b", 0)
    assert gate.due(1_500) == [("a", 1)]
    assert gate.due(1_600) == [] and gate.admit("a", 1_700) is None     # its window restarted at 1,500


@pytest.mark.parametrize("window", [0, -1, 1.5, True])
def test_a_window_that_makes_no_sense_is_refused(window):
    with pytest.raises(ValueError, match="alert window"):
        AlertGate(window)
