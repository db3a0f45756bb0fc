import numpy as np
import pytest
from PIL import Image

from reidlab.lab.palette import PART_COLOURS
from reidlab.lab.viz import (
    image_grid,
    mask_to_rgb,
    overlay_mask,
    plot_masks,
)


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


def test_parsing_to_mask_moves_background_to_zero_and_upsamples():
    from reidlab.lab.viz import parsing_to_mask

    labels = np.array([[0, 3], [1, 2], [3, 3]])  # l = 4: parts 0..2, background 3
    mask = parsing_to_mask(labels, num_parts=4)
    assert (mask == np.array([[1, 0], [2, 3], [0, 0]])).all()
    big = parsing_to_mask(labels, num_parts=4, size=(6, 4))  # exact multiples: each cell a 2 x 2 block
    assert (big == np.kron(mask, np.ones((2, 2), dtype=np.int64))).all()
    odd = parsing_to_mask(labels, num_parts=4, size=(4, 3))  # nearest: pixel (y, x) takes cell (y*3//4, x*2//3)
    assert (odd == mask[np.ix_([0, 0, 1, 2], [0, 0, 1])]).all()
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.3"):
        parsing_to_mask(np.array([[4]]), num_parts=4)
    with pytest.raises(ValueError, match="num_parts must be in 2..9"):
        parsing_to_mask(labels, num_parts=10)
    with pytest.raises(ValueError, match=r"one \(h, w\) parsing"):
        parsing_to_mask(labels[None], num_parts=4)


def test_overlay_parsing_leaves_the_background():
    from reidlab.lab.palette import PARSING_COLOURS
    from reidlab.lab.viz import overlay_parsing

    image = np.full((4, 2, 3), 100, dtype=np.uint8)
    labels = np.array([[0], [1]])  # l = 2: part 0 on top, background below
    out = overlay_parsing(image, labels, num_parts=2, alpha=0.5)
    expected = np.round(0.5 * 100 + 0.5 * PARSING_COLOURS[1].astype(np.float32)).astype(np.uint8)
    assert (out[:2] == expected).all() and (out[2:] == 100).all()


def test_plot_parsings_layouts_and_errors():
    import torch

    from reidlab.lab.viz import plot_parsings

    images = [np.zeros((8, 4, 3), dtype=np.uint8)] * 3
    parsings = {"a": torch.zeros(3, 2, 1, dtype=torch.long), "b": [np.ones((2, 1), dtype=np.int64)] * 3}
    gt = [np.zeros((8, 4), dtype=np.uint8)] * 3
    fig = plot_parsings(images, parsings, num_parts=3, gt_masks=gt)  # one row per image
    assert len(fig.axes) == 3 * 3 and [ax.get_title() for ax in fig.axes[:3]] == ["ground truth", "a", "b"]
    fig = plot_parsings(images, parsings, num_parts=3, layout="columns")  # one column per image
    assert [fig.axes[3 * p].get_ylabel() for p in range(3)] == ["image", "a", "b"]
    with pytest.raises(ValueError, match="layout must be 'rows' or 'columns'"):
        plot_parsings(images, parsings, num_parts=3, layout="grid")
    with pytest.raises(ValueError, match="parsing 'a' has 2 masks for 3 images"):
        plot_parsings(images, {"a": parsings["a"][:2]}, num_parts=3)
    with pytest.raises(ValueError, match="gt_masks has 1 masks for 3 images"):
        plot_parsings(images, parsings, num_parts=3, gt_masks=gt[:1])


def test_parsed_parts_never_look_like_ground_truth_regions():
    from reidlab.lab.palette import PARSING_COLOURS

    regions = PART_COLOURS[1:].astype(float)
    parts = PARSING_COLOURS[1:].astype(float)
    distance = np.linalg.norm(parts[:, None] - regions[None], axis=2)  # RGB distance, 0..441
    assert distance.min() > 80, distance.min()
    assert len({tuple(c) for c in PARSING_COLOURS}) == len(PARSING_COLOURS)


def test_legends_show_the_untinted_background_as_an_empty_box():
    from reidlab.lab.viz import parsing_legend, part_legend

    for handles in (part_legend(), parsing_legend(4)):
        background = [h for h in handles if h.get_label().startswith("background")]
        assert len(background) == 1 and background[0].get_facecolor()[3] == 0  # transparent face
    assert [h.get_label() for h in part_legend()][1:] == ["head", "upper body", "lower body", "shoes", "accessory"]
