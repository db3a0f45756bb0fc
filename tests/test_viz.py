import numpy as np
import pytest
from PIL import Image

from reidlab.viz import PART_COLOURS, image_grid, mask_to_rgb, overlay_mask, plot_masks


def test_mask_to_rgb_and_overlay():
    mask = np.array([[0, 1], [2, 5]], dtype=np.uint8)
    rgb = mask_to_rgb(mask)
    assert rgb.shape == (2, 2, 3) and (rgb[1, 1] == PART_COLOURS[5]).all()
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    blended = overlay_mask(image, mask, alpha=0.5)
    assert (blended[0, 0] == 100).all()  # background untouched
    expected = np.round(0.5 * 100 + 0.5 * PART_COLOURS[1].astype(np.float32)).astype(np.uint8)
    assert (blended[0, 1] == expected).all()
    with pytest.raises(ValueError, match="only 6 colours"):
        mask_to_rgb(np.array([[6]]))
    with pytest.raises(ValueError, match="differ in size"):
        overlay_mask(image, np.zeros((3, 2), dtype=np.uint8))


def test_image_grid_layout():
    fig = image_grid([np.zeros((8, 4, 3), dtype=np.uint8)] * 5, titles=list("abcde"), ncols=3)
    assert len(fig.axes) == 6 and fig.axes[4].get_title() == "e"
    with pytest.raises(ValueError, match="at least one image"):
        image_grid([])


def test_plot_masks_needs_mask_paths(tmp_path):
    from collections import namedtuple

    Rec = namedtuple("Rec", "path pid camid mask_path")
    Image.fromarray(np.zeros((8, 4, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    Image.fromarray(np.ones((8, 4), dtype=np.uint8)).save(tmp_path / "a.png")
    fig = plot_masks([Rec(str(tmp_path / "a.jpg"), 1, 0, str(tmp_path / "a.png"))])
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match="no mask_path"):
        plot_masks([Rec(str(tmp_path / "a.jpg"), 1, 0, None)])
