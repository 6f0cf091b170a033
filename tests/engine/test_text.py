import numpy as np

from oppy.engine.overlays.text import draw_text, fitted, printable, text_box


def test_text_is_drawn_inside_its_box_only():
    image = np.full((60, 200, 3), 40, np.uint8)
    before = image.copy()
    draw_text(image, "sol 1234 Navcam", (10, 20), 150, 24)
    changed = np.any(image != before, axis=2)
    rows, columns = np.nonzero(changed)
    assert changed.sum() > 50  # something legible was drawn
    assert rows.min() >= 20 and rows.max() < 44 and columns.min() >= 10 and columns.max() < 160
    assert image[changed].max() > 200  # white strokes


def test_a_background_fills_the_box():
    image = np.zeros((30, 30, 3), np.uint8)
    draw_text(image, "", (5, 5), 10, 10, background=(0, 0, 255))
    assert (image[5:15, 5:15] == (0, 0, 255)).all() and image[:5].max() == 0 and image[15:].max() == 0


def test_a_box_past_the_edge_is_clipped_not_an_error():
    image = np.zeros((20, 20, 3), np.uint8)
    draw_text(image, "hello", (30, 30), 40, 40, background=(0, 0, 255))  # wholly outside: nothing drawn
    draw_text(image, "hello", (-10, -10), 5, 5, background=(0, 0, 255))
    assert image.max() == 0
    draw_text(image, "hello", (15, 15), 40, 40, background=(0, 0, 255))  # its corner inside: that corner only
    assert (image[15:, 15:, 2] == 255).all() and image[:15].max() == 0 and image[:, :15].max() == 0


def test_what_the_font_cannot_draw_is_a_question_mark_and_long_text_is_cut():
    assert printable("sol 12 · Pancam\nleft") == "sol 12 - Pancam left"
    assert printable("Gusev crater, Spirit — Husband Hill, é") == "Gusev crater, Spirit - Husband Hill, e"
    assert printable("火星") == "??"
    scale, thickness = text_box(20)
    cut = fitted("x" * 500, 100, scale, thickness)
    assert cut.endswith("...") and len(cut) < 100
    assert fitted("short", 1000, scale, thickness) == "short"
