"""What a rover frame says about itself: the camera, the spacecraft clock, the sol and the start time, from a PDS
label's keywords or from the MER / MSL product id in a file's name (`1F128287145EFF0200P1214L0M1`: rover 1 =
Opportunity, camera F = front Hazcam, then the spacecraft clock).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

#: MER and MSL spacecraft clocks count seconds from this moment (J2000 in UTC): a start time is put on that scale
#: to be ordered with clocks
_CLOCK_EPOCH = datetime(2000, 1, 1, 11, 58, 55, 816000, tzinfo=timezone.utc)

_MER_ROVERS = {"1": "opportunity", "2": "spirit"}
_MER_CAMERAS = {"F": "front_hazcam", "R": "rear_hazcam", "N": "navcam", "P": "pancam", "M": "microscopic_imager",
                "E": "descent"}
_MSL_CAMERAS = {"FL": "front_hazcam", "FR": "front_hazcam", "RL": "rear_hazcam", "RR": "rear_hazcam",
                "NL": "navcam", "NR": "navcam", "CR": "chemcam", "ML": "mastcam", "MR": "mastcam", "MH": "mahli",
                "MD": "mardi"}
# rover, camera, clock, product type, site/drive, sequence, eye, filter, creator, version; inside a longer name too
_MER_ID = re.compile(r"(?<![A-Za-z0-9])([12])([FRNPME])(\d{9})([A-Z]{3})([A-Z0-9]{4})([A-Z]\d{4})([LRN])(\d)"
                     r"([A-Z_])(\d)(?![A-Za-z0-9])", re.IGNORECASE)
# engineering cameras and ChemCam: camera, side, _, clock, product type
_MSL_ID = re.compile(r"(?<![A-Za-z0-9])(FL|FR|RL|RR|NL|NR|CR)([A-Z0-9])_(\d{9})([A-Z]{3})", re.IGNORECASE)
# Mastcam, MAHLI, MARDI: sol, camera, sequence and command digits (10 on the raw-image pages, 16 in PDS ids), ...
_MSL_SOL_ID = re.compile(r"(?<![A-Za-z0-9])(\d{4})(ML|MR|MH|MD)(\d{10}|\d{16})([A-Z])(\d{1,2})(?![0-9])",
                         re.IGNORECASE)
#: INSTRUMENT_ID words -> the camera, first match wins
_INSTRUMENT_CAMERAS = (("FRONT_HAZ", "front_hazcam"), ("FHAZ", "front_hazcam"), ("REAR_HAZ", "rear_hazcam"),
                       ("RHAZ", "rear_hazcam"), ("NAV", "navcam"), ("PANCAM", "pancam"),
                       ("MICROSCOPIC", "microscopic_imager"),
                       ("DESCENT", "descent"), ("MAHLI", "mahli"), ("MARDI", "mardi"), ("MAST", "mastcam"),
                       ("CHEMCAM", "chemcam"), ("RMI", "chemcam"))
#: seconds of a Mars solar day, by which a spacecraft clock is counted in days
SOL_SECONDS = 88775.244
#: every camera name `--camera` knows, and the words each may be asked by
CAMERAS = sorted(set(_MER_CAMERAS.values()) | set(_MSL_CAMERAS.values()))


@dataclass(frozen=True)
class ProductInfo:
    """What is known of one frame (None where nothing says): its product id, rover, camera (one of `CAMERAS`), the
    instrument as the label names it, the sol, the start time as the
    label gives it, the spacecraft clock (seconds), and how many bands the product had (the first is used)."""

    product_id: str | None = None
    rover: str | None = None
    camera: str | None = None
    instrument: str | None = None
    sol: int | None = None
    start_time: str | None = None
    sclk: float | None = None
    bands: int | None = None

    def fields(self) -> dict[str, object]:
        """The known fields, by name (for a caption and the report)."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    def time(self) -> float | None:
        """When the frame was taken, in seconds on the spacecraft clock's scale (the clock where known, else the
        start time on that scale), for ordering; None where neither is known."""
        if self.sclk is not None:
            return self.sclk
        moment = parse_time(self.start_time) if self.start_time else None
        return (moment - _CLOCK_EPOCH).total_seconds() if moment else None

    def merged(self, other: ProductInfo) -> ProductInfo:
        """This, with the gaps filled from `other` (a label first, then the name's product id)."""
        return ProductInfo(**{key: value if value is not None else getattr(other, key)
                              for key, value in asdict(self).items()})


_TIME = re.compile(r"(\d{4}-(?:\d{2}-\d{2}|\d{3}))(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?")


def parse_time(text: str) -> datetime | None:
    """A PDS time (`2004-01-25T12:00:00.000`, day-of-year `2004-025T12:00:00`, without seconds, any number of
    decimals, a leap second, a trailing Z) in UTC, or None."""
    match = _TIME.fullmatch(str(text).strip().rstrip("Zz"))
    if match is None:
        return None
    day, hours, minutes, seconds, fraction = match.groups()
    seconds = min(int(seconds or 0), 59)  # a leap second (:60) is kept in its minute
    text = f"{day}T{hours or '00'}:{minutes or '00'}:{seconds:02d}.{(fraction or '0')[:6]}"
    for layout in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%jT%H:%M:%S.%f"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def from_name(name: str) -> ProductInfo:
    """What a MER or MSL product id in a file's name says (nothing where the name holds none)."""
    if match := _MER_ID.search(name):
        return ProductInfo(product_id=match.group(0).upper(), rover=_MER_ROVERS[match.group(1)],
                           camera=_MER_CAMERAS[match.group(2).upper()], sclk=float(match.group(3)))
    if match := _MSL_ID.search(name):
        return ProductInfo(product_id=match.group(0).upper(), rover="curiosity",
                           camera=_MSL_CAMERAS[match.group(1).upper()], sclk=float(match.group(3)))
    if match := _MSL_SOL_ID.search(name):
        return ProductInfo(product_id=match.group(0).upper(), rover="curiosity",
                           camera=_MSL_CAMERAS[match.group(2).upper()], sol=int(match.group(1)))
    return ProductInfo()


def day_of(name: str) -> str | None:
    """The Mars day a product id in `name` was taken on, as a key that photos of one day share: the sol where the id
    says it (Mastcam, MAHLI, MARDI), else the day of its spacecraft clock (`SOL_SECONDS`: a count of Mars days
    from the clock's zero, not the mission's sol number); None where the name holds no product id."""
    info = from_name(name)
    if info.sol is not None:
        return f"sol {info.sol}"
    return f"clock day {int(info.sclk // SOL_SECONDS)}" if info.sclk is not None else None


def _clock(value: object) -> float | None:
    """SPACECRAFT_CLOCK_START_COUNT (`"128287145.000"`, `"1/0128287145.000"`) in seconds, or None for anything
    else (an exponent, a clock of more than 12 digits)."""
    match = re.fullmatch(r"(?:\d+/)?(\d{1,12}(?:\.\d{1,9})?)", str(value).strip().strip('"'))
    return float(match.group(1)) if match else None


def _camera_of_instrument(instrument: str) -> str | None:
    """The camera an INSTRUMENT_ID names, or None where the table does not know it (the name's id may)."""
    upper = instrument.upper()
    for word, camera in _INSTRUMENT_CAMERAS:
        if word in upper:
            return camera
    return "microscopic_imager" if upper == "MI" else None


def from_label(label: dict) -> ProductInfo:
    """What a PDS label's keywords say (`label`: keyword -> value, as pdr reads them)."""
    def text(key: str) -> str | None:
        value = label.get(key)
        return None if value is None or str(value).strip().upper() in ("", "N/A", "UNK", "NULL") else \
            str(value).strip().strip('"')

    instrument = text("INSTRUMENT_ID")
    sol = text("PLANET_DAY_NUMBER")
    clock = text("SPACECRAFT_CLOCK_START_COUNT")
    product_id = text("PRODUCT_ID")
    said = ProductInfo(product_id=product_id, camera=_camera_of_instrument(instrument) if instrument else None,
                       instrument=instrument, sol=int(sol) if sol and re.fullmatch(r"-?[0-9]{1,9}", sol) else None,
                       start_time=text("START_TIME"), sclk=_clock(clock) if clock else None)
    return said.merged(from_name(product_id)) if product_id else said


#: a stereo camera's eye at the end of a name: `navcam_left`, `FRONT_HAZCAM_RIGHT`, `navcam-l`
_EYE = re.compile(r"(.+?)[ _-]?(left|right|l|r)", re.IGNORECASE)


def _cameras_of_word(word: str) -> set[str]:
    matches = {camera for camera in CAMERAS if word == camera or word in camera.split("_")}
    if len(word) == 1 and word.upper() in _MER_CAMERAS:
        matches.add(_MER_CAMERAS[word.upper()])
    if word.upper() in _MSL_CAMERAS:  # MSL's codes (ML: Mastcam left), before any eye is read into them
        matches.add(_MSL_CAMERAS[word.upper()])
    if not matches and len(word) >= 2:  # a label's INSTRUMENT_ID, as the report's `instrument` shows it
        camera = _camera_of_instrument(word)
        matches = {camera} if camera else set()
    return matches


def camera_wanted(wanted: str) -> set[str]:
    """The cameras `--camera` asks for, comma-separated, in any case: names of `CAMERAS`, words of them (`hazcam`:
    both Hazcams), MER's camera letters (F, R, N, P, M, E), a label's INSTRUMENT_ID (`FRONT_HAZCAM_RIGHT`), or a
    camera with its eye (`navcam_left`: frames are chosen by camera, so both eyes are kept, `eyes_named` says so);
    a `ValueError` naming the choices for anything else."""
    chosen = set()
    for word in (part.strip().lower() for part in wanted.split(",")):
        matches = _cameras_of_word(word)
        eye = _EYE.fullmatch(word)
        if not matches and eye:
            matches = _cameras_of_word(eye.group(1))
        if not matches:
            raise ValueError(f"unknown camera {word!r}: use one of {', '.join(CAMERAS)}, hazcam, a MER camera "
                             f"letter ({', '.join(_MER_CAMERAS)}) or a label's INSTRUMENT_ID")
        chosen |= matches
    return chosen


def eyes_named(wanted: str) -> list[str]:
    """The words of a `--camera` that name a stereo eye (left or right), which selects the camera, both eyes."""
    named = []
    for word in (part.strip().lower() for part in wanted.split(",")):
        eye = _EYE.fullmatch(word)
        if eye and eye.group(2) in ("left", "right") and _cameras_of_word(eye.group(1)) \
                and not any(word == camera for camera in CAMERAS):
            named.append(word)
    return named
