"""format_duration: one readable duration for the terminal's bar and the app's training panel."""

import math

from lstmviz.progress import format_duration, format_loss, progress_line


def test_durations_read_as_clock_times():
    assert format_duration(0) == "0:00"
    assert format_duration(59.6) == "1:00"  # rounded to the second
    assert format_duration(3725) == "1:02:05"
    assert format_duration(math.nan) == "?" and format_duration(-1) == "?" and format_duration(math.inf) == "?"


def test_large_losses_print_in_scientific_notation():
    assert format_loss(1.83421) == "1.8342"
    assert format_loss(9999.0) == "9999.0000"
    assert format_loss(6.0312345e30) == "6.0312e+30"
    assert format_loss(-2.5e4) == "-2.5000e+04"
    assert format_loss(math.nan) == "nan"
    line = progress_line(3, 10, 2.0, 6.0312345e30, 1.5e12)
    assert "loss 6.0312e+30" in line and "val 1.5000e+12" in line
