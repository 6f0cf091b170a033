import pytest

from oppy.engine.inputs.facts import CAMERAS, ProductInfo, camera_wanted, day_of, from_label, from_name, parse_time


@pytest.mark.parametrize(("name", "rover", "camera", "sclk", "sol"), [
    ("1F128287145EFF0200P1214L0M1.JPG", "opportunity", "front_hazcam", 128287145.0, None),
    ("1n130000000eff0300p1500r0m1.jpg", "opportunity", "navcam", 130000000.0, None),
    ("spirit-navcam-2n292380548fflb159p0691l0m1.jpg", "spirit", "navcam", 292380548.0, None),
    ("2P126471150EDN0000P2111L2M1.png", "spirit", "pancam", 126471150.0, None),
    ("curiosity-navcam-NLB_524534514EDR_F0562034NCAM00280M_.jpg", "curiosity", "navcam", 524534514.0, None),
    ("FRB_397506222EDR_F0010008AUT_04096M_.JPG", "curiosity", "front_hazcam", 397506222.0, None),
    ("1234MR0053960000E1_DXXX.jpg", "curiosity", "mastcam", None, 1234),
    ("0003ML0000000110100031E01_DRCL.JPG", "curiosity", "mastcam", None, 3),  # the PDS id's 16 digits
    ("0415MH0002270000104203C00_DRCL.JPG", "curiosity", "mahli", None, 415),
])
def test_product_ids_in_names_say_rover_camera_and_clock(name, rover, camera, sclk, sol):
    info = from_name(name)
    assert (info.rover, info.camera, info.sclk, info.sol) == (rover, camera, sclk, sol)


@pytest.mark.parametrize("name", ["sol0_frame.png", "curiosity-chemcam-637516383420670098.jpg", "1F12828.jpg",
                                  "x1F128287145EFF0200P1214L0M1y.jpg", "", "\udcff.png"])
def test_names_without_a_product_id_say_nothing(name):
    assert from_name(name) == ProductInfo()


def test_a_label_says_sol_instrument_time_and_clock():
    info = from_label({"INSTRUMENT_ID": "NAVCAM_RIGHT", "PLANET_DAY_NUMBER": 1234, "START_TIME": "2007-06-13T01:02:03Z",
                       "SPACECRAFT_CLOCK_START_COUNT": "1/0235000000.123", "PRODUCT_ID": "1N235000000EFF0300P1500R0M1"})
    assert (info.camera, info.instrument, info.sol, info.sclk) == ("navcam", "NAVCAM_RIGHT", 1234, 235000000.123)
    assert info.rover == "opportunity"  # from the label's own product id
    assert from_label({"INSTRUMENT_ID": "MI"}).camera == "microscopic_imager"
    assert from_label({"PLANET_DAY_NUMBER": "N/A", "START_TIME": "UNK"}) == ProductInfo()


def test_times_on_one_scale_order_labels_and_clocks_together():
    assert parse_time("2004-025T00:00:00.000") == parse_time("2004-01-25T00:00:00")
    assert parse_time("not a time") is None
    by_time = ProductInfo(start_time="2004-01-25T12:00:00.000").time()
    # MER's clock counts seconds from 2000-01-01T11:58:55.816 UTC: 1485 days and 64.184 s to this start time
    assert by_time == pytest.approx(1485 * 86400 + 64.184)
    assert ProductInfo(sclk=5.0, start_time="2004-01-25T12:00:00").time() == 5.0  # the clock first
    assert ProductInfo().time() is None


def test_photos_of_one_day_share_a_key():
    assert day_of("0003ML0000000110100031E01_DRCL.JPG") == day_of("0003MR0000000120100032I01_DRCL.JPG") == "sol 3"
    assert day_of("1N130000000EFF0300P1500R0M1.JPG") == day_of("1F130050000EFF0300P1500R0M1.JPG")
    assert day_of("1N130000000EFF0300P1500R0M1.JPG") != day_of("1N130100000EFF0300P1500R0M1.JPG")  # 100,000 s on
    assert day_of("holiday.png") is None


def test_cameras_are_asked_by_name_word_or_mer_letter():
    assert camera_wanted("navcam") == {"navcam"}
    assert camera_wanted("hazcam") == {"front_hazcam", "rear_hazcam"}
    assert camera_wanted("F, p") == {"front_hazcam", "pancam"}
    assert set(CAMERAS) >= camera_wanted("mastcam,mahli,chemcam")
    with pytest.raises(ValueError, match="unknown camera 'telescope'"):
        camera_wanted("telescope")


def test_times_and_clocks_that_real_labels_write():
    assert parse_time("2005-12-31T23:59:60.5") == parse_time("2005-12-31T23:59:59.5")  # a leap second
    assert parse_time("2004-01-25T12:00:00.1234567").microsecond == 123456
    assert parse_time("2004-01-25T12:00") == parse_time("2004-01-25T12:00:00")
    assert from_label({"SPACECRAFT_CLOCK_START_COUNT": "1.5e20"}).sclk is None
    assert from_label({"SPACECRAFT_CLOCK_START_COUNT": '"128287145.512"'}).sclk == 128287145.512
