"""format_duration: one readable duration for the terminal's bar and the app's training panel."""

import math

from lstmviz.progress import format_duration


def test_durations_read_as_clock_times():
    assert format_duration(0) == "0:00"
    assert format_duration(59.6) == "1:00"  # rounded to the second
    assert format_duration(3725) == "1:02:05"
    assert format_duration(math.nan) == "?" and format_duration(-1) == "?" and format_duration(math.inf) == "?"
