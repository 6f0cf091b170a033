import av
import numpy as np
import pytest
from av.video.reformatter import Colorspace

from oppy.engine.kernels.yuv import BT601, BT709, colour_standard, rgb_to_yuv, rgb_to_yuv_frame

# the published limited-range matrices (Y, Cb, Cr rows per 8-bit R, G, B), an independent reference
PUBLISHED = {
    "bt601": [[0.256788, 0.504129, 0.097906], [-0.148223, -0.290993, 0.439216], [0.439216, -0.367788, -0.071427]],
    "bt709": [[0.182586, 0.614231, 0.062007], [-0.100644, -0.338572, 0.439216], [0.439216, -0.398942, -0.040274]],
}
SCALER = {"bt601": Colorspace.ITU601, "bt709": Colorspace.ITU709}


def smooth_card(height, width):
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    return np.clip(np.dstack([200 * x + 30, 120 + 60 * y, 220 - 150 * x * y]), 0, 255).astype(np.uint8)


def scaler(rgb, standard, pix_fmt):
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    planes = frame.reformat(format=pix_fmt, dst_colorspace=SCALER[standard.name], dst_color_range=1).to_ndarray()
    return planes.reshape(-1, rgb.shape[1])  # PyAV gives yuv444p as 3xHxW: as planes one under the other


@pytest.mark.parametrize("standard", [BT601, BT709], ids=lambda s: s.name)
def test_the_matrices_are_the_published_ones(standard):
    np.testing.assert_allclose(standard.matrix(), PUBLISHED[standard.name], atol=2e-6)


@pytest.mark.parametrize(("width", "height", "name"), [(640, 480, "bt601"), (720, 576, "bt601"),
                                                       (1279, 719, "bt601"), (1280, 720, "bt709"),
                                                       (1024, 1024, "bt709"), (1280, 400, "bt709"),
                                                       (500, 720, "bt709")])
def test_hd_sizes_get_bt709_and_smaller_ones_bt601(width, height, name):
    assert colour_standard(width, height).name == name


@pytest.mark.parametrize("standard", [BT601, BT709], ids=lambda s: s.name)
@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_yuv_conversion_matches_ffmpegs_scaler_on_smooth_colour(standard, pix_fmt):
    # On smooth colour the two may differ only by rounding; at hard colour edges they filter chroma differently
    # (a 2x2 mean here, the scaler interpolates).
    rgb = smooth_card(96, 128)
    ours = rgb_to_yuv(rgb, standard, pix_fmt)
    theirs = scaler(rgb, standard, pix_fmt)
    assert ours.shape == theirs.shape == ((96 * 3 // 2 if pix_fmt == "yuv420p" else 3 * 96), 128)
    difference = np.abs(ours.astype(int) - theirs)
    assert difference[:96].max() <= 1 and difference[96:].max() <= 2 and difference.mean() < 0.5
    flat = np.full((8, 8, 3), (255, 255, 255), np.uint8)
    assert rgb_to_yuv(flat, standard, pix_fmt)[0, 0] == 235  # limited range: white is 235, as the scaler makes it


def test_the_two_standards_differ_where_a_player_would_show_it():
    # Mars ochre: decoded by the wrong matrix it shifts by several codes (the bug untagged BT.601 video had)
    ochre = np.full((16, 16, 3), (180, 110, 70), np.uint8)
    as_709 = av.VideoFrame.from_ndarray(rgb_to_yuv(ochre, BT601), format="yuv420p").reformat(
        format="rgb24", src_colorspace=Colorspace.ITU709, src_color_range=1).to_ndarray()
    assert np.abs(as_709[8, 8].astype(int) - (180, 110, 70)).max() >= 5


def test_each_chroma_sample_is_that_of_the_mean_of_its_2x2_pixels():
    # A one-pixel checkerboard of red, blue and black: taking any one pixel of a block would give pure red, pure
    # blue or grey; the mean gives each block's blend.
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[0::2, 0::2] = (255, 0, 0)
    rgb[1::2, 1::2] = (0, 0, 255)
    rgb[2:, 4:] = (40, 200, 90)  # and one flat block
    mean = rgb.reshape(2, 2, 3, 2, 3).mean(axis=(1, 3))
    matrix = np.array(PUBLISHED["bt601"])
    yuv = rgb_to_yuv(rgb, BT601).astype(int)
    np.testing.assert_allclose(yuv[:4], 16 + rgb @ matrix[0], atol=0.51)
    np.testing.assert_allclose(yuv[4:5].reshape(2, 3), 128 + mean @ matrix[1], atol=0.51)  # U: 2 rows of 3 in 1 of 6
    np.testing.assert_allclose(yuv[5:6].reshape(2, 3), 128 + mean @ matrix[2], atol=0.51)
    theirs = scaler(rgb, BT601, "yuv420p").astype(int)
    assert np.abs(yuv[4:, :4] - theirs[4:, :4]).max() <= 2  # where the scaler's filter sees the same blocks


def test_yuv444p_keeps_every_pixels_own_chroma():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0::2, 0::2] = (255, 0, 0)
    rgb[1::2, 1::2] = (0, 0, 255)
    matrix = np.array(PUBLISHED["bt709"])
    yuv = rgb_to_yuv(rgb, BT709, "yuv444p").astype(int)
    for plane, offset, row in ((0, 16, matrix[0]), (1, 128, matrix[1]), (2, 128, matrix[2])):
        np.testing.assert_allclose(yuv[4 * plane:4 * plane + 4], offset + rgb @ row, atol=0.51)


@pytest.mark.parametrize(("height", "width"), [(6, 10), (2, 8), (34, 18), (32, 20)])
def test_yuv_planes_lie_where_ffmpeg_reads_them_whatever_the_height(height, width):
    # With a height that is not a multiple of 4, the U and V planes start halfway along a row of the array. The
    # colour changes slowly from top left to bottom right, and U and V differ, so a misplaced row would show.
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.clip(np.dstack([200 - x - y, 90 + 0 * x, 40 + x + y]), 0, 255).astype(np.uint8)
    ours = rgb_to_yuv(rgb, BT601).astype(int)
    assert np.abs(ours - scaler(rgb, BT601, "yuv420p")).max() <= 2
    back = av.VideoFrame.from_ndarray(rgb_to_yuv(rgb, BT601), format="yuv420p").to_ndarray(format="rgb24")
    assert np.abs(back.astype(int) - rgb).max() <= 4  # through FFmpeg's own reading of the planes


def test_yuv_conversion_wants_even_sided_rgb_for_420():
    for wrong in (np.zeros((3, 4, 3), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8)):
        with pytest.raises(ValueError, match="even sides"):
            rgb_to_yuv(wrong, BT601)
    assert rgb_to_yuv(np.zeros((3, 5, 3), np.uint8), BT601, "yuv444p").shape == (9, 5)


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
@pytest.mark.parametrize(("width", "height"), [(1000, 750), (66, 48), (64, 2)])
def test_a_frame_converted_in_place_holds_the_planes_of_the_array_whatever_its_row_padding(width, height, pix_fmt):
    # PyAV pads rows to its alignment (1000 px: Y rows of 1008 bytes, U and V of 512): the kernel writes past none
    # of it into the picture, as PyAV's own reading of the frame shows
    rgb = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame = rgb_to_yuv_frame(rgb, BT709, pix_fmt)
    assert (frame.width, frame.height, frame.format.name) == (width, height, pix_fmt)
    assert (frame.colorspace, frame.color_range, frame.color_primaries, frame.color_trc) == (1, 1, 1, 1)
    np.testing.assert_array_equal(frame.to_ndarray().reshape(-1, width), rgb_to_yuv(rgb, BT709, pix_fmt))
