"""value_colours gives exactly the colours the heatmap image draws."""

import numpy as np
import pytest

from lstmviz.plots import HeatmapView, value_colours


@pytest.mark.parametrize("name, levels, colorblind", [("h", (-1.0, 1.0), False), ("f", (0.0, 1.0), True),
                                                      ("c", (-20.0, 20.0), False)])
def test_value_colours_equal_the_heatmap_pixels(qapp, name, levels, colorblind):
    lo, hi = levels
    values = np.linspace(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), 1000).astype(np.float32)  # past both ends
    view = HeatmapView(name, colorblind=colorblind)
    try:
        view.set_data(values[:, None], levels=levels)  # T = 1000 steps of one unit
        view.image.render()
        image = view.image.qimage
        drawn = np.array([image.pixelColor(x, 0).getRgb()[:3] for x in range(len(values))])
        assert np.array_equal(value_colours(name, values, levels, colorblind), drawn)
    finally:
        view.close()
