"""Cartoon faces: a colour ground-truth grid with a smile you can slide, rendered from factor indices.

The grid: 7 factors, 3 x 4 x 4 x 3 x 3 x 5 x 4 = 8,640 RGB 64x64 images, index order as listed below with
background fastest (C order, like dSprites).

| factor      | size | values (`factor_values`)                                    | what it changes              |
| ----------- | ---- | ----------------------------------------------------------- | ---------------------------- |
| face_shape  | 3    | width / height 0.70, 0.84, 0.98 (narrow, oval, round)       | width of the face and hair   |
| skin_tone   | 4    | class index 0..3: porcelain, light, tan, deep brown         | face, neck, nose and cheeks  |
| hair_colour | 4    | class index 0..3: black, brown, blonde, ginger              | hair and eyebrows            |
| eye_size    | 3    | eye-white half-width 3.2, 3.9, 4.6 px                       | eyes, pupils, eyebrow height |
| gaze        | 3    | pupil offset -2.5, 0, +2.5 px (to the image's left .. right)| pupils                       |
| mouth       | 5    | curvature -1, -0.5, 0, 0.5, 1 (strong frown .. big smile)   | the mouth only               |
| background  | 4    | hue 130, 200, 270, 330 degrees (green, blue, violet, pink)  | the background               |

Colours (sRGB 0-255) are SKIN_TONES, HAIR_COLOURS and BACKGROUNDS (HSV with saturation 0.38, value 0.92):
any two of the 12 colours differ by more than 55 in RGB distance, and a dark outline separates the head
from the background, so every combination reads as a face and every factor is visible at 64x64.

Geometry, in pixels of the 64x64 image, x to the right, y down, pixel (row i, column j) covering
[j, j+1] x [i, i+1]; rx = 20.5 * face_shape is the face half-width (14.4, 17.2 or 20.1):
- face: an ellipse centred at (32, 29), half-height 20.5 (chin at y = 49.5) and half-width rx, narrowed
  towards the chin by up to 14% (an egg), with a 0.9 px dark outline; pink blush on both cheeks;
- hair: a bob behind the face (an ellipse centred at (32, 28) grown 3 px beyond the face, cut straight at
  y = 35, outlined) and a fringe over the forehead down to the line
  y = 13 + 4.2 (u + 1) - 1.1 (u + 1)^2 + 1.2 cos(6u), u = (x - 32) / rx, i.e. from y = 14 at the image's
  left down to y = 18 at its right, edged with a darker shade of the hair colour;
- neck (skin in shade, 12 px wide) and shoulders (a dark blue shirt from y = 56 down);
- eyes: centred at y = 27 and x = 32 -/+ (0.4 rx + 0.5); white ellipses of half-width eye_size and
  half-height 1.1 eye_size with a 0.6 px dark rim; dark round pupils of radius 0.45 eye_size + 0.3 with a
  white glint, shifted sideways by the gaze offset and clipped to the eye white (both eyes look the same way;
  even clipped, a pupil's centre moves more than 2 px per gaze step);
- eyebrows: 1.5 px thick arches in a darkened hair colour, 2.4 px above the top of each eye;
- nose: a small ellipse of darker skin at (32, 33.5);
- mouth: a thick dark-red parabola centred at (32, 39) with half-width 0.45 rx; its corners sit at
  y = 39 - 2.25 curvature and its middle at y = 39 + 2.25 curvature (corners up for a smile, down for a
  frown), 2.4 px thick at the corners and 2.4 + 1.6 |curvature| px in the middle, with round ends.

`faces-expressive` (`ExpressiveFaces`, issue #34) is the same grid with an expression that moves more pixels
(`EXPRESSIVE`; `faces` draws `PLAIN`, and its images are unchanged byte for byte): the mouth is centred at y = 40.5
with half-width 0.56 rx and amplitude 9 px, 4 px thick at the corners and 4 + 2 |curvature| px in the middle, kept
1 px inside the face's outline; the eyebrows, 2.4 px thick, rise 2.5 curvature px, and with a frown their inner
ends drop up to 4 px below their outer ends (a scowl). Between random faces and their twins with another mouth,
251 pixels change instead of 85 (6.1% of the image instead of 2.1%).

Rendering is anti-aliased by 4x supersampling: every layer is drawn with hard edges on a 256x256 canvas
(painter's algorithm, one layer id per canvas pixel) and the canvas is box-averaged to 64x64. Because box
averaging is linear, the supersampled image of any grid point equals

    image = W_bg * background + W_hair * hair + W_skin * skin + C

where the weight maps W (64x64) and the fixed-colour image C (3x64x64) depend only on the geometric
factors (face_shape, eye_size, gaze, mouth: 135 combinations). These are rendered once per process,
vectorised over all 135 combinations (under a second); `images_from_factors` then gathers the maps and
mixes in the colours, over 20,000 images per second on one core, so nothing is cached on disk.

Uploading a face to encode: the app centre-crops an upload to a square and resizes it to 64x64, so a photo
or a drawing works when it shows one face from the front, centred, upright, with the head (hair included)
filling about three quarters of the frame's height (top of the hair near the top edge, chin about three
quarters of the way down, shoulders at the bottom), both eyes open, lit evenly, on a plain light background
of one colour. Side views, tilted heads, hats, glasses, several faces or busy backgrounds are outside the
domain the model was trained on; a drawing with dark outlines and flat colours is closest to it.
"""

from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass

import numpy as np

from .base import GroundTruthDataset

IMAGE_SIZE = 64
CHUNK = 512  # images mixed at a time: keeps the temporaries in cache when a caller asks for the whole grid
SUPERSAMPLE = 4  # edges are drawn on a 256x256 canvas, then box-averaged: 17 levels of coverage per pixel

FACE_RATIOS = (0.7, 0.84, 0.98)  # width / height: each step widens the face by about 3 px a side
SKIN_TONES = ((250, 222, 198), (234, 189, 150), (194, 138, 96), (141, 94, 66))
HAIR_COLOURS = ((38, 32, 34), (92, 56, 32), (240, 200, 80), (200, 84, 38))
EYE_SIZES = (3.2, 3.9, 4.6)  # half-width of the eye white, px
GAZE_OFFSETS = (-2.5, 0.0, 2.5)  # pupil shift, px: >= 2 px even where the eye white clips the pupil
MOUTH_CURVATURES = (-1.0, -0.5, 0.0, 0.5, 1.0)
BACKGROUND_HUES = (130, 200, 270, 330)  # degrees, away from the oranges of skin and hair
BACKGROUND_SATURATION, BACKGROUND_VALUE = 0.38, 0.92  # pastel, so the dark outline and ink stand out
BACKGROUNDS = tuple(
    tuple(round(255 * c) for c in colorsys.hsv_to_rgb(h / 360, BACKGROUND_SATURATION, BACKGROUND_VALUE))
    for h in BACKGROUND_HUES
)

SKIN_NAMES = ("porcelain", "light", "tan", "deep brown")
HAIR_NAMES = ("black", "brown", "blonde", "ginger")
BACKGROUND_NAMES = ("green", "blue", "violet", "pink")

CENTRE = (32.0, 29.0)  # face centre (x, y), px
FACE_HALF_HEIGHT = 20.5
CHIN_NARROWING = 0.14  # the face is this much narrower at the chin than an ellipse: an egg, not a melon
OUTLINE = 0.9  # px, the dark line around the head
HAIR_GROWTH = 3.0  # px the bob extends beyond the face
HAIR_BOTTOM = 35.0  # y where the bob is cut off
EYE_Y = 27.0
EYE_HEIGHT = 1.1  # eye half-height / half-width
PUPIL = (0.45, 0.3)  # pupil radius = PUPIL[0] * eye half-width + PUPIL[1]
BROW_GAP = 2.4  # px between an eye's top and its eyebrow
MOUTH_Y = 39.0
MOUTH_AMPLITUDE = 4.5  # px the middle of the mouth sits below its corners at curvature 1
MOUTH_THICKNESS = (2.4, 1.6)  # px at the corners, extra in the middle at full curvature


@dataclass(frozen=True)
class Expression:
    """How far the mouth factor reaches: the mouth's geometry and how the eyebrows follow it (y down, px)."""

    mouth_y: float = MOUTH_Y
    amplitude: float = MOUTH_AMPLITUDE  # the middle sits this far below the corners at curvature 1
    half_width: float = 0.45  # the mouth's half-width, a fraction of the face half-width rx
    thickness: tuple[float, float] = MOUTH_THICKNESS  # at the corners, extra in the middle at full curvature
    brow_thickness: float = 1.5
    brow_raise: float = 0.0  # px the eyebrows rise at curvature 1 (and fall at -1)
    brow_frown: float = 0.0  # px the inner ends of the eyebrows drop below their outer ends at curvature -1
    teeth: float = 0.0  # the fraction of the mouth's thickness shown as a light band of teeth along its middle


PLAIN = Expression()  # `faces`: level eyebrows, so that the mouth alone carries the mood
EXPRESSIVE = Expression(mouth_y=40.5, amplitude=9.0, half_width=0.56, thickness=(4.0, 2.0), brow_thickness=2.4,
                        brow_raise=2.5, brow_frown=4.0, teeth=0.45)  # `faces-expressive`

# colours of the layers, as (w_bg, w_hair, w_skin, fixed RGB 0-255): the pixel is the weighted sum
INK = (52, 36, 36)  # outlines and pupils
LAYERS = {
    "background": (1.0, 0.0, 0.0, (0, 0, 0)),
    "outline": (0.0, 0.0, 0.0, INK),
    "shirt": (0.0, 0.0, 0.0, (58, 74, 112)),
    "neck": (0.0, 0.0, 0.82, (0, 0, 0)),
    "hair": (0.0, 1.0, 0.0, (0, 0, 0)),
    "hair_edge": (0.0, 0.55, 0.0, (0, 0, 0)),
    "skin": (0.0, 0.0, 1.0, (0, 0, 0)),
    "blush": (0.0, 0.0, 0.8, (48, 20, 24)),
    "nose": (0.0, 0.0, 0.8, (0, 0, 0)),
    "brow": (0.0, 0.6, 0.0, (16, 12, 12)),
    "eye_white": (0.0, 0.0, 0.0, (250, 250, 250)),
    "pupil": (0.0, 0.0, 0.0, (34, 26, 30)),
    "glint": (0.0, 0.0, 0.0, (255, 255, 255)),
    "mouth": (0.0, 0.0, 0.0, (92, 18, 30)),
    "teeth": (0.0, 0.0, 0.0, (246, 240, 228)),  # light where the lips are dark: the mouth shows on every skin
}
LAYER_ID = {name: i for i, name in enumerate(LAYERS)}

_SKIN = np.asarray(SKIN_TONES, dtype=np.float32) / 255.0
_HAIR = np.asarray(HAIR_COLOURS, dtype=np.float32) / 255.0
_BACKGROUND = np.asarray(BACKGROUNDS, dtype=np.float32) / 255.0


class Faces(GroundTruthDataset):
    """The cartoon-face factor grid, rendered on demand (see the module docstring for the geometry)."""

    name = "faces"
    factor_names = ("face_shape", "skin_tone", "hair_colour", "eye_size", "gaze", "mouth", "background")
    factor_sizes = (3, 4, 4, 3, 3, 5, 4)
    channels = 3
    image_size = IMAGE_SIZE
    label_names = ()
    # names of each factor's values (the table above), and the factors whose values have no order
    face_shape_names = ("narrow", "oval", "round")
    skin_tone_names = ("porcelain", "light", "tan", "deep brown")
    hair_colour_names = ("black", "brown", "blonde", "ginger")
    eye_size_names = ("small eyes", "medium eyes", "large eyes")
    gaze_names = ("looks left", "looks ahead", "looks right")
    mouth_names = ("strong frown", "frown", "neutral", "smile", "big smile")
    # the colours the renderer draws its colour factors in (RGB 0-255): a map colours their classes by them
    skin_tone_colours = SKIN_TONES
    hair_colour_colours = HAIR_COLOURS
    background_colours = BACKGROUNDS
    background_names = ("green", "blue", "violet", "pink")
    categorical_factors = ("skin_tone", "hair_colour", "background")
    expression = PLAIN

    def factor_values(self, k: int) -> np.ndarray:
        values = {
            "face_shape": FACE_RATIOS,
            "eye_size": EYE_SIZES,
            "gaze": GAZE_OFFSETS,
            "mouth": MOUTH_CURVATURES,
            "background": BACKGROUND_HUES,
        }.get(self.factor_names[k])
        if values is None:  # colours without a natural number: their class index
            return np.arange(self.factor_sizes[k], dtype=np.float64)
        return np.asarray(values, dtype=np.float64)

    def images_from_factors(self, factors: np.ndarray) -> np.ndarray:
        """(n, 7) class indices -> (n, 3, 64, 64) float32 in [0, 1]; raises ValueError off the grid."""
        factors = np.asarray(factors, dtype=np.int64)
        self.check_factors(factors)
        images = np.empty((factors.shape[0], 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        for start in range(0, factors.shape[0], CHUNK):
            images[start:start + CHUNK] = _mix(factors[start:start + CHUNK], self.expression)
        return images


class ExpressiveFaces(Faces):
    """The same grid drawn with an expression that moves more pixels (`EXPRESSIVE`): a wider, thicker mouth that
    bends further, and eyebrows that rise with a smile and slant down to a scowl with a frown. Issue #34: the plain
    mouth changes 2% of the image, the last thing a bottleneck keeps."""

    name = "faces-expressive"
    expression = EXPRESSIVE


def _mix(factors: np.ndarray, expression: Expression = PLAIN) -> np.ndarray:
    """(n, 7) valid class indices -> (n, 3, 64, 64) float32: the geometry's maps times the colours."""
    weights, fixed = _basis(expression)  # (135, 3, 64, 64) each
    shape, skin, hair, eye, gaze, mouth, background = factors.T
    geometry = ((shape * len(EYE_SIZES) + eye) * len(GAZE_OFFSETS) + gaze) * len(MOUTH_CURVATURES) + mouth
    images = fixed[geometry]  # (n, 3, 64, 64), a fresh array we accumulate into
    for source, colour in enumerate((_BACKGROUND[background], _HAIR[hair], _SKIN[skin])):  # (n, 3) each
        images += weights[geometry, source, None] * colour[:, :, None, None]
    return np.clip(images, 0.0, 1.0, out=images)  # float rounding only: each pixel averages in-range colours


@functools.lru_cache(maxsize=2)
def _basis(expression: Expression = PLAIN) -> tuple[np.ndarray, np.ndarray]:
    """The weight maps and fixed-colour image of every geometry: ((135, 3, 64, 64), (135, 3, 64, 64)) float32."""
    side = IMAGE_SIZE * SUPERSAMPLE
    labels = _label_canvas(expression).reshape(-1, side, side)  # (135, 256, 256)
    table = np.array([[*spec[:3], *(np.asarray(spec[3]) / 255.0)] for spec in LAYERS.values()], np.float32)
    s = SUPERSAMPLE
    components = np.empty((labels.shape[0], 6, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for c in range(6):
        hi = table[:, c][labels]  # (135, 256, 256): this component of each canvas pixel
        components[:, c] = hi.reshape(-1, IMAGE_SIZE, s, IMAGE_SIZE, s).mean(axis=(2, 4))
    weights, fixed = np.ascontiguousarray(components[:, :3]), np.ascontiguousarray(components[:, 3:])
    weights.flags.writeable = fixed.flags.writeable = False  # shared by every Faces in the process
    return weights, fixed


def _label_canvas(expression: Expression = PLAIN) -> np.ndarray:
    """The painter's-algorithm canvas: (3, 3, 3, 5, 256, 256) uint8 layer ids over (shape, eye, gaze, mouth)."""
    side = IMAGE_SIZE * SUPERSAMPLE
    coord = (np.arange(side, dtype=np.float32) + 0.5) / SUPERSAMPLE  # pixel centres in 64x64 units
    x = coord.reshape(1, 1, 1, 1, 1, side)
    y = coord.reshape(1, 1, 1, 1, side, 1)
    # factor parameters, each on its own axis of (shape, eye, gaze, mouth, y, x)
    rx = (FACE_HALF_HEIGHT * np.asarray(FACE_RATIOS, np.float32)).reshape(-1, 1, 1, 1, 1, 1)
    ew = np.asarray(EYE_SIZES, np.float32).reshape(1, -1, 1, 1, 1, 1)
    gx = np.asarray(GAZE_OFFSETS, np.float32).reshape(1, 1, -1, 1, 1, 1)
    curv = np.asarray(MOUTH_CURVATURES, np.float32).reshape(1, 1, 1, -1, 1, 1)
    cx, cy = CENTRE
    ry = FACE_HALF_HEIGHT
    dx, dy = x - cx, y - cy

    canvas = np.zeros(np.broadcast_shapes(rx.shape, ew.shape, gx.shape, curv.shape, y.shape, x.shape), np.uint8)

    def paint(layer: str, mask: np.ndarray) -> None:
        np.copyto(canvas, np.uint8(LAYER_ID[layer]), where=np.broadcast_to(mask, canvas.shape))

    def face(grow: float) -> np.ndarray:
        """Inside the egg-shaped face grown by `grow` px."""
        chin = 1.0 - CHIN_NARROWING * np.clip(dy / ry, 0.0, 1.0)
        return (dx / (rx * chin + grow)) ** 2 + (dy / (ry + grow)) ** 2 <= 1.0

    # shoulders and neck
    shoulders = (dx / 27.0) ** 2 + ((y - 73.0) / 17.0) ** 2 <= 1.0
    paint("outline", (dx / (27.0 + OUTLINE)) ** 2 + ((y - 73.0) / (17.0 + OUTLINE)) ** 2 <= 1.0)
    paint("shirt", shoulders)
    neck = (np.abs(dx) <= 6.0) & (y >= cy) & (y <= 59.0)
    paint("outline", (np.abs(dx) <= 6.0 + OUTLINE) & (y >= cy) & (y <= 59.0 + OUTLINE))
    paint("neck", neck)

    # the bob behind the face
    hair_top = cy - 1.0
    inside_bob = (dx / (rx + HAIR_GROWTH)) ** 2 + ((y - hair_top) / (ry + HAIR_GROWTH)) ** 2 <= 1.0
    bob = inside_bob & (y <= HAIR_BOTTOM)
    bob_edge = ((dx / (rx + HAIR_GROWTH + OUTLINE)) ** 2 + ((y - hair_top) / (ry + HAIR_GROWTH + OUTLINE)) ** 2
                <= 1.0) & (y <= HAIR_BOTTOM + OUTLINE)
    paint("outline", bob_edge)
    paint("hair", bob)

    # the face
    paint("outline", face(OUTLINE))
    paint("skin", face(0.0))
    cheek_x = 0.55 * rx
    for side_sign in (-1.0, 1.0):
        paint("blush", (dx - side_sign * cheek_x) ** 2 / 9.0 + (y - 35.0) ** 2 / 4.0 <= 1.0)
    paint("nose", (dx / 1.8) ** 2 + ((y - 33.5) / 1.4) ** 2 <= 1.0)

    # the side-swept fringe: a curve from high on the image's left to low on its right
    u = dx / rx  # -1 .. 1 across the face
    fringe_line = cy - 0.78 * ry + 4.2 * (u + 1.0) - 1.1 * (u + 1.0) ** 2 + 1.2 * np.cos(6.0 * u)
    paint("hair_edge", inside_bob & (y <= fringe_line + 0.8))
    paint("hair", inside_bob & (y <= fringe_line))

    # eyes, eyebrows and pupils
    eh = EYE_HEIGHT * ew
    pr = PUPIL[0] * ew + PUPIL[1]
    for side_sign in (-1.0, 1.0):
        ex = cx + side_sign * (0.4 * rx + 0.5)
        ex_d = x - ex
        ey_d = y - EYE_Y
        white = (ex_d / ew) ** 2 + (ey_d / eh) ** 2 <= 1.0
        paint("outline", (ex_d / (ew + 0.6)) ** 2 + (ey_d / (eh + 0.6)) ** 2 <= 1.0)
        paint("eye_white", white)
        pupil = (ex_d - gx) ** 2 + ey_d**2 <= pr**2
        paint("pupil", pupil & white)
        glint = (ex_d - gx + 0.35 * pr) ** 2 + (ey_d + 0.35 * pr) ** 2 <= (0.32 * pr) ** 2
        paint("glint", glint & white)
        # eyebrow: a gentle arch, level in `faces` (so that the mouth alone carries the mood); with an
        # expressive face it rises with a smile and its inner end drops with a frown
        brow_dy = y - (EYE_Y - eh - BROW_GAP)
        if expression.brow_raise or expression.brow_frown:
            inner = np.clip(-side_sign * ex_d / 3.4, -1.0, 1.0)  # 1 at the end nearer the nose, -1 at the outer
            brow_dy = brow_dy + expression.brow_raise * curv - expression.brow_frown * np.maximum(-curv, 0.0) * inner
        paint("brow", _curve(ex_d, brow_dy, 3.4, -0.8, expression.brow_thickness, 0.0))

    # the mouth
    sag = expression.amplitude * curv  # the corners sit sag / 2 above mouth_y, the middle sag / 2 below
    corners_dy = y - (expression.mouth_y - 0.5 * sag)
    mouth = _curve(dx, corners_dy, expression.half_width * rx, sag, expression.thickness[0],
                   expression.thickness[1] * np.abs(curv))
    paint("mouth", mouth & face(-1.0))  # clear of the jaw's outline
    if expression.teeth:
        t = expression.teeth
        teeth = _curve(dx, corners_dy, expression.half_width * rx, sag, t * expression.thickness[0],
                       t * expression.thickness[1] * np.abs(curv))  # the lips' middle line, thinner
        paint("teeth", teeth & (np.abs(dx) <= 0.8 * expression.half_width * rx) & mouth & face(-1.0))
    return canvas


def _curve(dx, dy, half_width, sag, thickness, extra):
    """A thick parabola with round ends through (-half_width, 0) and (half_width, 0) whose middle is `sag` px
    lower (y down); `extra` px are added to its thickness in the middle. Arrays broadcast."""
    u = dx / half_width
    centre_dy = dy - sag * (1.0 - u * u)
    slope = -2.0 * sag * u / half_width
    dist = np.abs(centre_dy) / np.sqrt(1.0 + slope * slope)
    body = (np.abs(u) <= 1.0) & (dist <= 0.5 * (thickness + extra * (1.0 - u * u)))
    caps = ((np.abs(dx) - half_width) ** 2 + dy * dy) <= (0.5 * thickness) ** 2
    return body | caps
