"""The flip-rate figure: a PNG with one bar per candidate, coloured by placement."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from opsa.contexts.flip_rate import score_columns
from opsa.contexts.flip_rate_plot import COLOURS, plot_flip_rates
from opsa.errors import InputError


def scores(tmp_path, placements):
    rows = []
    for k, placement in enumerate(placements):
        tfr = 0.1 + 0.2 * k
        row = dict.fromkeys(score_columns(), 0)
        row |= {"id": f"c{k}@{placement}", "placement": placement, "tfr": tfr}
        rows.append(row | {"tfr_low": tfr - 0.1, "tfr_high": tfr + 0.1})
    path = tmp_path / "flip_rates.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def has_colour(image: np.ndarray, hex_colour: str) -> bool:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    return bool((np.abs(image[..., :3] - rgb).max(axis=-1) < 0.02).any())


def test_plot_colours_candidates_by_placement(tmp_path):
    path = scores(tmp_path, ["system", "user_prefix", "user_suffix", "demonstrations"])
    out = tmp_path / "tfr.png"
    plot_flip_rates(path, out)
    image = mpimg.imread(out)
    assert image.shape[0] > 200 and image.shape[1] > 800
    assert all(has_colour(image, colour) for colour in COLOURS.values())


def test_plot_shows_only_the_placements_present(tmp_path):
    out = tmp_path / "tfr.png"
    plot_flip_rates(scores(tmp_path, ["system", "system"]), out, rate="tfr")
    image = mpimg.imread(out)
    assert has_colour(image, COLOURS["system"])
    assert not any(has_colour(image, COLOURS[p]) for p in COLOURS if p != "system")


def test_plot_rejects_an_unknown_placement(tmp_path):
    with pytest.raises(InputError, match="unknown placement 'footnote'"):
        plot_flip_rates(scores(tmp_path, ["footnote"]), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
