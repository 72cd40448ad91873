"""The Series panel reads CSV files through ``engine.series`` (csv module, detected or chosen
delimiter, chosen decimal separator): the columns it lists and the values it loads are the
file's, a file it cannot read unambiguously is refused in a dialog naming the row, and the
delimiter and decimal choices are remembered in the settings."""

import numpy as np
import pytest
from PySide6 import QtCore

from lstmviz.lessons.series_panel import SeriesPanel
from tests.app.conftest import make_window
from tests.app.helpers import lessons


@pytest.fixture
def panel(qtbot):
    widget = SeriesPanel()
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()
    widget.close()


def _csv(tmp_path, text, name="f.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _columns(panel):
    return [panel.column_box.itemText(k) for k in range(panel.column_box.count())]


def _choose(panel, column_label):
    panel.column_box.setCurrentIndex(_columns(panel).index(column_label))
    return panel.load_column()


COSTS = [10.5 + k for k in range(12)]


def test_semicolons_with_commas_in_a_text_column(panel, tmp_path, errors):
    rows = [f"{k};a (b, c) {k};{cost}" for k, cost in enumerate(COSTS)]
    path = _csv(tmp_path, "id;note;cost\n" + "\n".join(rows) + "\n")
    assert panel.open_csv(path)
    assert _columns(panel) == ["0: id", "1: note", "2: cost"]
    assert _choose(panel, "2: cost")
    np.testing.assert_array_equal(panel.values, COSTS)
    assert errors == []


def test_unquoted_thousands_separators_are_refused_naming_the_row(panel, tmp_path, errors):
    path = _csv(tmp_path, "date,price\n2024-01-02,10,012.6\n2024-01-03,9,990.1\n")
    assert not panel.open_csv(path)
    (title, message), = errors
    assert title == "Cannot open this CSV file"
    assert message.startswith(f"{path}: row 2 has 3 fields but the first row (row 1) has 2 "
                              "(delimiter ','); a \",\" inside a number"), message
    assert panel.csv_path is None and panel.column_box.count() == 0 and panel.values is None


def test_decimal_comma_loads_as_numbers(panel, tmp_path, errors):
    path = _csv(tmp_path, "t;v\n" + "".join(f"{k};{k},5\n" for k in range(12)))
    assert panel.open_csv(path)
    assert not _choose(panel, "1: v")  # "1,5" is not a number with the decimal point
    assert "decimal ','" in errors[-1][1]
    panel.decimal_box.setCurrentText("comma ,")
    assert _columns(panel) == ["0: t", "1: v"]
    assert _choose(panel, "1: v")
    np.testing.assert_array_equal(panel.values, np.arange(12) + 0.5)


def test_changing_the_delimiter_lists_the_columns_again(panel, tmp_path, errors):
    path = _csv(tmp_path, "a|b,c\n" + "".join(f"{k}|{k + 1},{k + 2}\n" for k in range(12)))
    assert panel.open_csv(path)  # detected: "," comes first among the delimiters that fit every row
    assert _columns(panel) == ["0: a|b", "1: c"]
    panel.delimiter_box.setCurrentText("pipe |")
    assert _columns(panel) == ["0: a", "1: b,c"]
    assert _choose(panel, "0: a")
    np.testing.assert_array_equal(panel.values, np.arange(12.0))
    panel.delimiter_box.setCurrentText("comma ,")
    panel.decimal_box.setCurrentText("comma ,")  # the same character twice: refused, the list stays
    assert "must differ" in errors[-1][1]
    assert _columns(panel) == ["0: a|b", "1: c"]


def test_missing_values_are_refused_or_interpolated_as_chosen_and_the_status_says_where(panel, tmp_path, errors):
    cells = ["null"] + [str(c) for c in COSTS[:3]] + ["", "NA"] + [str(c) for c in COSTS[5:]] + ["n/a"]
    path = _csv(tmp_path, "date,close\n" + "".join(f"d{k},{c}\n" for k, c in enumerate(cells)))
    assert panel.open_csv(path)
    assert not _choose(panel, "1: close")
    assert errors[-1] == ("Cannot use this column", f"{path}: row 2, column 'close': 'null' marks a missing value; "
                                                    "choose to interpolate missing values to fill such gaps linearly")
    assert panel.values is None
    panel.missing_box.setCurrentText("interpolate")
    assert _choose(panel, "1: close")
    np.testing.assert_allclose(panel.values, COSTS)  # COSTS rise by 1 per row: the gaps lie on that line
    assert panel.status.text() == (f"{len(COSTS)} values: 1: close of {path}; 2 missing values interpolated "
                                   "(rows 6, 7), 2 missing values left out at the ends (rows 2, 15)")


def test_delimiter_decimal_and_missing_are_remembered(qtbot, settings_path, errors):
    window = make_window(settings_path)
    series = lessons(window).series
    series.delimiter_box.setCurrentText("tab")
    series.decimal_box.setCurrentText("comma ,")
    series.missing_box.setCurrentText("interpolate")
    window.close()
    ini = QtCore.QSettings(str(settings_path), QtCore.QSettings.IniFormat)
    assert ini.value("lessons/series_delimiter") == "tab" and ini.value("lessons/series_decimal") == "comma ,"
    assert ini.value("lessons/series_missing") == "interpolate"
    second = make_window(settings_path)
    try:
        again = lessons(second).series
        assert again.csv_options() == {"delimiter": "\t", "decimal": ","}
        assert again.missing_box.currentData() == "interpolate"
    finally:
        second.close()
