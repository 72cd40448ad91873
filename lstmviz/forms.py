"""Form widgets built from config settings (``engine.settings.Setting``).

``setting_widget`` makes the widget of one config field: a combo box of its choices (GUI labels
from ``choice_labels``), a ``QSpinBox`` for an integer or a ``QDoubleSpinBox`` for a real, over
the field's range (``Setting.form_range``: excluded bounds stay enterable so that the config
refuses them with its own message), starting at the field's default, with its help and range as
the tooltip. A panel may narrow the range or start elsewhere (a lesson's smaller model), never
widen it. ``widget_value``/``set_widget_value`` convert between the widget and the config's value
(None = "off" is shown as 0, "off").
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QSpinBox, QWidget

from engine.settings import Setting

DEFAULT_DECIMALS, DEFAULT_STEP = 2, 0.1  # a real spin box without its own decimals/step


def tooltip(spec: Setting) -> str:
    """The field's help followed by its range ("... (in [0, 1))"); choices: the help alone."""
    return spec.help if spec.choices is not None else f"{spec.help} ({spec.requirement(off_as='0')})"


def setting_widget(spec: Setting, value=None, low=None, high=None, tip: str | None = None) -> QWidget:
    """The form widget of ``spec``; ``value`` (default: the field's default), ``low``/``high``
    (default: ``spec.form_range()``) and ``tip`` (default: ``tooltip(spec)``) override.
    Raises ValueError if ``low``/``high`` lie outside the field's form range."""
    if spec.choices is not None:
        widget = QComboBox()
        for choice in spec.choices:
            widget.addItem(spec.choice_label(choice), choice)
    else:
        form_low, form_high = spec.form_range()
        low = form_low if low is None else low
        high = form_high if high is None else high
        if not form_low <= low <= high <= form_high:
            raise ValueError(f"a form range [{low}, {high}] must lie within [{form_low}, {form_high}]")
        if spec.kind is int:
            widget = QSpinBox()
        else:
            widget = QDoubleSpinBox()
            widget.setDecimals(DEFAULT_DECIMALS if spec.decimals is None else spec.decimals)
            widget.setSingleStep(DEFAULT_STEP if spec.step is None else spec.step)
            if spec.off:
                widget.setSpecialValueText("off")
        widget.setRange(low, high)
        widget.setKeyboardTracking(False)
    set_widget_value(spec, widget, spec.default if value is None else value)
    widget.setToolTip(tooltip(spec) if tip is None else tip)
    return widget


def widget_value(spec: Setting, widget: QWidget):
    """The widget's value as the config takes it (None for an "off" 0)."""
    if isinstance(widget, QComboBox):
        return widget.currentData()
    return spec.from_form(spec.kind(widget.value()))


def set_widget_value(spec: Setting, widget: QWidget, value) -> None:
    """Show ``value`` (None: "off"); ValueError for a value that is not one of the choices.
    A number outside the widget's range is clamped to it (Qt's spin box behaviour)."""
    if isinstance(widget, QComboBox):
        index = widget.findData(value)
        if index < 0:
            raise ValueError(f"{spec.label} cannot be {value!r}; expected one of {spec.choices}")
        widget.setCurrentIndex(index)
    else:
        widget.setValue(spec.form_value(value))


def changed_signal(widget: QWidget):
    """The signal a form widget emits when its value changes."""
    return widget.currentIndexChanged if isinstance(widget, QComboBox) else widget.valueChanged
