"""Procedural facade photographs with advertising, and their ground-truth masks.

One call to :func:`render` draws one 1152×768 street photograph from a seed: a sky strip, one to
three buildings (plaster, brick, panels or glass curtain wall) with window grids, balconies,
doors and shop fronts, a street strip, and advertising on them (shop signs, banners, posters,
light boxes, stickers, billboards). Hard negatives that look a little like advertising but are
not (coloured windows and doors, awnings, traffic signs, graffiti, carved lettering) are drawn
too, and occluders (trees, lamp posts, people, cars) cover parts of the ads. Shadows, lighting,
perspective, noise and JPEG artefacts come last. The mask holds 1 exactly where an ad is visible.

Everything random comes from one ``numpy.random.Generator`` so that a seed fixes the picture.
The fonts are part of the picture: ``scripts/setup.sh`` installs Debian's fonts-dejavu-core and
fonts-liberation, and :func:`render` refuses to draw when one of :data:`_FONT_FILES` is missing
(a silent fall-back would change the pictures, the masks and every golden digest).

``generator`` selects the generator version (:data:`GENERATORS`, the knobs below): version 1 is
the original one (the 400-image training set of v1–v5 and the 24-image golden set), version 2
adds photographic facade texture, lettering mounted on the wall without a panel, facade wraps (large
flat panels), dusk and sun lighting and glare. A version-1 picture never draws a random number for
a version-2 feature, so version 1 stays byte-identical.
"""
from __future__ import annotations

import io
import os
import string
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

WIDTH, HEIGHT = 1152, 768

_FONT_FILES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Italic.ttf",
]
_FONTS = list(_FONT_FILES)
_font_cache: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}

_SYLLABLES = ["ka", "fe", "bar", "to", "mi", "lux", "pro", "net", "sun", "ro", "ma", "go", "zen",
              "vi", "ta", "shop", "max", "neo", "tel", "co", "ra", "on", "ex", "li", "mo", "dy"]
_WORDS = ["CAFE", "SALE", "PHARMACY", "BANK", "PIZZA", "HOTEL", "OPEN", "BAR", "SUSHI", "MARKET",
          "-50%", "NEW", "BAKERY", "OPTIK", "FASHION", "MOBILE", "24/7", "BEAUTY", "TAXI", "KEBAB"]

SATURATED = [(220, 30, 40), (250, 200, 0), (0, 120, 200), (20, 160, 70), (240, 110, 0),
             (140, 30, 160), (230, 0, 120), (0, 170, 180), (255, 255, 255), (20, 20, 20),
             (200, 0, 0), (255, 140, 170), (90, 200, 250), (180, 220, 30)]
PLASTER = [(226, 214, 190), (235, 232, 225), (200, 196, 188), (238, 221, 160), (220, 170, 140),
           (190, 205, 185), (180, 190, 205), (210, 185, 165), (160, 150, 140), (240, 240, 236)]
BRICK = [(150, 60, 40), (170, 85, 55), (120, 50, 40), (190, 140, 90), (140, 100, 80)]


class MissingFonts(RuntimeError):
    pass


def check_fonts() -> None:
    """Raise with the install command when a font of the generator is missing."""
    missing = [f for f in _FONT_FILES if not os.path.exists(f)]
    if missing:
        raise MissingFonts(f"fonts missing: {', '.join(missing)}; install them with "
                           "`apt-get install -y fonts-dejavu-core fonts-liberation` (scripts/setup.sh does)")


@dataclass(frozen=True)
class Knobs:
    """What one generator version draws (probabilities are per building, shop unit or picture).

    Every feature of version 2 is off (0) in version 1.
    """

    version: int
    texture: float = 0.0            # photographic facade texture: fBm grain, dirt streaks under windows, stains (strength)
    p_mounted_letters: float = 0.0  # per shop sign: letters mounted on the wall instead of a panel (advertising)
    p_upper_letters: float = 0.0    # per building: a brand name in mounted letters high on the wall (advertising)
    p_wrap: float = 0.0             # per building: a facade wrap / mesh banner over the upper floors (a large flat panel)
    p_lit_window: float = 0.0       # per window: lit from inside (glows at dusk; not advertising)
    p_dusk: float = 0.0             # per picture: dusk — dark, blue scene; light boxes and lit windows glow
    p_sun: float = 0.0              # per picture: directional sun (light falloff over the height, warm cast) and vignetting
    p_glare: float = 0.0            # per picture: a lens glare / specular bloom (not labelled)


GENERATORS = {
    1: Knobs(1),
    2: Knobs(2, texture=1.0, p_mounted_letters=0.35, p_upper_letters=0.3, p_wrap=0.18, p_lit_window=0.15,
             p_dusk=0.15, p_sun=0.5, p_glare=0.15),
}


def _font(rng: np.random.Generator, size: int) -> ImageFont.ImageFont:
    size = int(max(6, min(size, 400)))
    path = _FONTS[int(rng.integers(len(_FONTS)))]
    key = (path, size)
    if key not in _font_cache:
        _font_cache[key] = ImageFont.truetype(path, size)
    return _font_cache[key]


def _word(rng: np.random.Generator) -> str:
    if rng.random() < 0.45:
        return _WORDS[int(rng.integers(len(_WORDS)))]
    n = int(rng.integers(2, 4))
    w = "".join(_SYLLABLES[int(rng.integers(len(_SYLLABLES)))] for _ in range(n))
    return w.upper() if rng.random() < 0.7 else w.capitalize()


def _jitter(rng: np.random.Generator, color, amount: float = 18.0):
    c = np.array(color, dtype=np.float32) + rng.normal(0, amount, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def _contrast(color) -> tuple[int, int, int]:
    lum = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    return (20, 20, 20) if lum > 140 else (250, 250, 250)


def _lowfreq(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: a small random grid upsampled bilinearly."""
    gh, gw = max(2, cells * h // max(h, w)), max(2, cells * w // max(h, w))
    small = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.BILINEAR))


# ---------------------------------------------------------------- wall materials (numpy, float)

def _wall_plaster(rng, h, w):
    base = np.array(_jitter(rng, PLASTER[int(rng.integers(len(PLASTER)))], 10), np.float32)
    tex = _lowfreq(rng, h, w, 12) * 10 + _lowfreq(rng, h, w, 60) * 6 + rng.normal(0, 3, (h, w))
    return base[None, None, :] + tex[..., None]


def _wall_brick(rng, h, w):
    base = np.array(BRICK[int(rng.integers(len(BRICK)))], np.float32)
    bh = int(rng.integers(8, 20))
    bw = int(bh * rng.uniform(2.2, 3.2))
    mortar = np.array(_jitter(rng, (185, 180, 170), 15), np.float32)
    ys, xs = np.mgrid[0:h, 0:w]
    row = ys // bh
    xo = xs + (row % 2) * (bw // 2)
    col = xo // bw
    table = rng.normal(0, 14, (257, 3)).astype(np.float32)
    brick = base[None, None, :] + table[(row * 31 + col * 17) % 257]
    is_mortar = ((ys % bh) < 2) | ((xo % bw) < 2)
    out = np.where(is_mortar[..., None], mortar[None, None, :], brick)
    return out + rng.normal(0, 5, (h, w, 1)) + _lowfreq(rng, h, w, 10)[..., None] * 12


def _wall_panels(rng, h, w):
    base = np.array(_jitter(rng, [(150, 155, 160), (90, 95, 100), (200, 200, 195), (120, 90, 70),
                                  (70, 100, 120), (180, 110, 60)][int(rng.integers(6))], 12), np.float32)
    ph, pw = int(rng.integers(60, 180)), int(rng.integers(60, 220))
    ys, xs = np.mgrid[0:h, 0:w]
    pid = (ys // ph) * 101 + (xs // pw)
    shade = rng.normal(0, 8, 4096).astype(np.float32)[pid % 4096]
    seam = ((ys % ph) < 2) | ((xs % pw) < 2)
    out = base[None, None, :] + shade[..., None] + _lowfreq(rng, h, w, 8)[..., None] * 10
    out[seam] *= 0.55
    return out


def _wall_glass(rng, h, w):
    tint = np.array(_jitter(rng, [(70, 110, 140), (60, 120, 110), (90, 100, 120), (40, 60, 80)][int(rng.integers(4))], 12), np.float32)
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = _lowfreq(rng, h, w, 6)[..., None] * 35
    out = tint[None, None, :] * (1.25 - 0.5 * ys) + sky
    mh, mw = int(rng.integers(50, 120)), int(rng.integers(50, 140))
    yy, xx = np.mgrid[0:h, 0:w]
    mull = ((yy % mh) < 3) | ((xx % mw) < 3)
    out[mull] = np.array(_jitter(rng, (60, 60, 65), 10), np.float32)
    return out


_MATERIALS = {"plaster": _wall_plaster, "brick": _wall_brick, "panels": _wall_panels, "glass": _wall_glass}


@dataclass
class Canvas:
    """The picture being drawn (float RGB) and its mask (uint8)."""

    rgb: np.ndarray
    mask: np.ndarray
    knobs: Knobs = GENERATORS[1]
    emissive: np.ndarray | None = None  # version ≥ 2: where light is emitted (glows at dusk), 0..1

    def glow(self, alpha: np.ndarray, x: int, y: int) -> None:
        """Mark an RGBA patch's opaque area as emitting light (version ≥ 2 only)."""
        if self.emissive is None:
            return
        ph, pw = alpha.shape
        x0, y0, x1, y1 = max(0, x), max(0, y), min(WIDTH, x + pw), min(HEIGHT, y + ph)
        if x1 > x0 and y1 > y0:
            region = self.emissive[y0:y1, x0:x1]
            np.maximum(region, alpha[y0 - y:y1 - y, x0 - x:x1 - x], out=region)

    def label(self, m: np.ndarray, x: int, y: int) -> None:
        """Set the mask to advertising where the boolean patch m is true."""
        ph, pw = m.shape
        x0, y0, x1, y1 = max(0, x), max(0, y), min(WIDTH, x + pw), min(HEIGHT, y + ph)
        if x1 > x0 and y1 > y0:
            self.mask[y0:y1, x0:x1][m[y0 - y:y1 - y, x0 - x:x1 - x]] = 1

    def paste(self, patch: Image.Image, x: int, y: int, is_ad: bool, alpha: np.ndarray | None = None) -> None:
        """Alpha-composite an RGBA patch; where it is opaque the mask becomes is_ad."""
        arr = np.asarray(patch.convert("RGBA"), np.float32)
        a = arr[..., 3] / 255.0 if alpha is None else alpha
        ph, pw = a.shape
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(WIDTH, x + pw), min(HEIGHT, y + ph)
        if x1 <= x0 or y1 <= y0:
            return
        sub_a = a[y0 - y:y1 - y, x0 - x:x1 - x, None]
        sub_c = arr[y0 - y:y1 - y, x0 - x:x1 - x, :3]
        region = self.rgb[y0:y1, x0:x1]
        region[...] = region * (1 - sub_a) + sub_c * sub_a
        opaque = sub_a[..., 0] > 0.5
        self.mask[y0:y1, x0:x1][opaque] = 1 if is_ad else 0


# ---------------------------------------------------------------- advertising patches (PIL RGBA)

def _text_block(rng, d: ImageDraw.ImageDraw, box, color, lines: int = 1) -> None:
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    if bw < 8 or bh < 6:
        return
    lh = bh / lines
    for i in range(lines):
        text = _word(rng) if rng.random() < 0.8 or lines == 1 else " ".join(_word(rng) for _ in range(2))
        size = int(lh * rng.uniform(0.55, 0.85))
        f = _font(rng, size)
        tb = d.textbbox((0, 0), text, font=f)
        tw, th = tb[2] - tb[0], tb[3] - tb[1]
        if tw > bw * 0.95 and tw > 0:
            f = _font(rng, max(6, int(size * bw * 0.9 / tw)))
            tb = d.textbbox((0, 0), text, font=f)
            tw, th = tb[2] - tb[0], tb[3] - tb[1]
        align = rng.random()
        tx = x0 + (bw - tw) / 2 if align < 0.6 else x0 + bw * 0.05 if align < 0.8 else x1 - tw - bw * 0.05
        ty = y0 + i * lh + (lh - th) / 2 - tb[1]
        d.text((tx, ty), text, fill=color, font=f)


def _logo(rng, d: ImageDraw.ImageDraw, cx, cy, r, color) -> None:
    kind = int(rng.integers(4))
    if kind == 0:
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
        d.ellipse((cx - r * 0.5, cy - r * 0.5, cx + r * 0.5, cy + r * 0.5), fill=_contrast(color))
    elif kind == 1:
        d.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=color)
    elif kind == 2:
        pts = [(cx + r * np.cos(a) * (1 if i % 2 == 0 else 0.45), cy + r * np.sin(a) * (1 if i % 2 == 0 else 0.45))
               for i, a in enumerate(np.linspace(0, 2 * np.pi, 11)[:-1] - np.pi / 2)]
        d.polygon(pts, fill=color)
    else:
        d.rounded_rectangle((cx - r, cy - r, cx + r, cy + r), radius=r * 0.3, fill=color)
        d.text((cx - r * 0.5, cy - r * 0.7), string.ascii_uppercase[int(rng.integers(26))],
               fill=_contrast(color), font=_font(rng, int(r * 1.4)))


def _gradient_patch(rng, w, h, c0, c1) -> Image.Image:
    t = np.linspace(0, 1, h if rng.random() < 0.5 else w, dtype=np.float32)
    a, b = np.array(c0, np.float32), np.array(c1, np.float32)
    line = a[None, :] * (1 - t[:, None]) + b[None, :] * t[:, None]
    arr = np.broadcast_to(line[:, None, :], (h, w, 3)) if len(t) == h else np.broadcast_to(line[None, :, :], (h, w, 3))
    return Image.fromarray(np.ascontiguousarray(arr).astype(np.uint8), "RGB").convert("RGBA")


def make_ad(rng: np.random.Generator, kind: str, w: int, h: int) -> Image.Image:
    """One advertising object as an RGBA patch of size w×h (alpha = its silhouette)."""
    w, h = max(6, int(w)), max(6, int(h))
    bg = SATURATED[int(rng.integers(len(SATURATED)))]
    fg = _contrast(bg) if rng.random() < 0.7 else SATURATED[int(rng.integers(len(SATURATED)))]
    if kind == "wrap":
        return _wrap_patch(rng, w, h, bg, fg)
    if kind == "poster" or (kind in ("billboard", "banner") and rng.random() < 0.5):
        img = _gradient_patch(rng, w, h, _jitter(rng, bg, 40), _jitter(rng, SATURATED[int(rng.integers(len(SATURATED)))], 40))
    else:
        img = Image.new("RGBA", (w, h), bg + (255,))
    d = ImageDraw.Draw(img)
    if kind in ("poster", "billboard"):
        # a "photo": blobs of colour, then a headline
        for _ in range(int(rng.integers(2, 6))):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.1, 0.4) * min(w, h)
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_jitter(rng, SATURATED[int(rng.integers(len(SATURATED)))], 30))
        band = rng.uniform(0.2, 0.4) * h
        if rng.random() < 0.6:
            d.rectangle((0, h - band, w, h), fill=bg)
        _text_block(rng, d, (w * 0.05, h - band, w * 0.95, h), fg, lines=1)
        if rng.random() < 0.5:
            _text_block(rng, d, (w * 0.05, h * 0.05, w * 0.95, h * 0.25), fg)
    elif kind == "banner" and h > w * 1.5:
        # vertical banner: letters stacked or a rotated word
        word = _word(rng)[:8]
        f = _font(rng, int(min(w * 0.75, h / max(1, len(word)) * 0.9)))
        step = h / max(1, len(word))
        for i, ch in enumerate(word):
            d.text((w * 0.15, i * step + step * 0.05), ch, fill=fg, font=f)
    else:
        lines = 1 if h < 60 or rng.random() < 0.6 else 2
        lx = 0.0
        if rng.random() < 0.6 and w > h * 1.8:
            r = h * 0.35
            _logo(rng, d, h * 0.5, h * 0.5, r, fg if rng.random() < 0.5 else SATURATED[int(rng.integers(len(SATURATED)))])
            lx = h * 0.9
        _text_block(rng, d, (lx + w * 0.03, h * 0.08, w * 0.97, h * 0.92), fg, lines=lines)
    if rng.random() < 0.5:
        bw = max(1, int(min(w, h) * rng.uniform(0.02, 0.08)))
        d.rectangle((0, 0, w - 1, h - 1), outline=_jitter(rng, (230, 230, 230) if rng.random() < 0.5 else (40, 40, 40)), width=bw)
    if kind == "lightbox":
        arr = np.asarray(img, np.float32)
        arr[..., :3] = np.clip(arr[..., :3] * 1.15 + 25, 0, 255)
        img = Image.fromarray(arr.astype(np.uint8), "RGBA")
        if rng.random() < 0.5:  # round light box
            m = Image.new("L", (w, h), 0)
            ImageDraw.Draw(m).ellipse((0, 0, w - 1, h - 1), fill=255)
            img.putalpha(m)
    if kind == "sticker" and rng.random() < 0.5:
        m = Image.new("L", (w, h), 0)
        ImageDraw.Draw(m).rounded_rectangle((0, 0, w - 1, h - 1), radius=min(w, h) // 3, fill=255)
        img.putalpha(m)
    return img


def _uni(rng: np.random.Generator, low: float, high: float) -> float:
    """uniform(low, high) that tolerates an empty range (small buildings): returns low then."""
    return float(rng.uniform(low, high)) if high > low else float(low)


# ---------------------------------------------------------------- generator version 2

def _weathering(rng, h: int, w: int, strength: float) -> np.ndarray:
    """Photographic wall texture (added to a material): multi-scale grain, dirt streaks, stains."""
    grain = (_lowfreq(rng, h, w, 160) * 4 + _lowfreq(rng, h, w, 40) * 6 + _lowfreq(rng, h, w, 9) * 9
             + rng.normal(0, 2.5, (h, w)).astype(np.float32))
    # rain streaks: darker columns that fade downwards from random heights
    cols = np.clip(_lowfreq(rng, 2, w, max(8, w // 6))[0] * 2.2 - 1.0, 0, 1)
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    start = _uni(rng, 0, 0.6)
    streaks = cols[None, :] * np.clip((ys - start) * 3, 0, 1) * np.exp(-np.maximum(ys - start, 0) * 2.5) * _uni(rng, 10, 30)
    stains = np.zeros((h, w), np.float32)
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 5))):
        cx, cy, r = _uni(rng, 0, w), _uni(rng, 0, h), _uni(rng, 15, 90)
        d.ellipse((cx - r, cy - r * _uni(rng, 0.4, 1.2), cx + r, cy + r), fill=int(rng.integers(40, 140)))
    stains = np.asarray(img.filter(ImageFilter.GaussianBlur(_uni(rng, 6, 20))), np.float32) / 255.0 * 35
    tint = np.array([_uni(rng, 0.9, 1.1), 1.0, _uni(rng, 0.85, 1.05)], np.float32)
    return strength * ((grain - streaks - stains)[..., None] * tint[None, None, :])


def _wrap_patch(rng, w: int, h: int, bg, fg) -> Image.Image:
    """A facade wrap / mesh banner: a big printed picture, sometimes mostly one flat colour."""
    if rng.random() < 0.4:  # mostly flat: the hard case (few edges inside a large panel)
        img = _gradient_patch(rng, w, h, _jitter(rng, bg, 15), _jitter(rng, bg, 30))
    else:  # a "photo": smooth colour field and shapes
        field = np.stack([_lowfreq(rng, h, w, 5) for _ in range(3)], -1) * 70
        base = np.array(_jitter(rng, bg, 40), np.float32)
        img = Image.fromarray(np.clip(base + field, 0, 255).astype(np.uint8), "RGB").convert("RGBA")
        d0 = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 5))):
            cx, cy, r = _uni(rng, 0, w), _uni(rng, 0, h), _uni(rng, 0.1, 0.35) * min(w, h)
            d0.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_jitter(rng, SATURATED[int(rng.integers(len(SATURATED)))], 30))
    d = ImageDraw.Draw(img)
    _text_block(rng, d, (w * 0.08, h * _uni(rng, 0.05, 0.6), w * 0.92, h * _uni(rng, 0.7, 0.95)), fg, lines=1 if rng.random() < 0.6 else 2)
    if rng.random() < 0.5:
        r = min(w, h) * _uni(rng, 0.06, 0.12)
        _logo(rng, d, w - 2 * r, 2 * r, r, fg)
    # a mesh banner lets a little of the windows behind show through
    alpha = np.full((h, w), int(rng.integers(225, 256)), np.uint8)
    img.putalpha(Image.fromarray(alpha, "L"))
    return img


def _mounted_letters(rng, canvas: Canvas, x, y, w, h, occupied: list) -> bool:
    """Individual letters (and sometimes a logo) fixed to the wall, no panel behind: advertising.

    The label is the lettering's area — the letters dilated so that the gaps between them close —
    and the letters cast a small shadow on the wall (not labelled).
    """
    x, y, w, h = int(x), int(y), int(w), int(h)
    if w < 30 or h < 12 or x < 0 or y < 0 or x + w > WIDTH or y + h > HEIGHT:
        return False
    for (ox0, oy0, ox1, oy1) in occupied:
        if x < ox1 and x + w > ox0 and y < oy1 and y + h > oy0:
            return False
    colour = _jitter(rng, [(250, 250, 250), (20, 20, 20), (210, 170, 60), *SATURATED][int(rng.integers(3 + len(SATURATED)))], 15)
    patch = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(patch)
    lx = 0.0
    if rng.random() < 0.35 and w > h * 3:
        _logo(rng, d, h * 0.5, h * 0.5, h * 0.4, colour)
        lx = h * 1.1
    _text_block(rng, d, (lx, 0, w, h), colour)
    alpha = np.asarray(patch.getchannel("A"))
    if alpha.max() == 0:
        return False
    shadow = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    shadow.putalpha(Image.fromarray((alpha * 0.45).astype(np.uint8), "L"))
    dx, dy = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    canvas.paste(shadow.filter(ImageFilter.GaussianBlur(1.5)), x + dx, y + dy, is_ad=False)
    canvas.paste(patch, x, y, is_ad=True)
    k = max(3, int(h * 0.25)) | 1
    region = np.asarray(Image.fromarray(alpha).filter(ImageFilter.MaxFilter(k)).filter(ImageFilter.MinFilter(max(3, k // 2) | 1))) > 127
    canvas.label(region, x, y)
    if rng.random() < 0.3:  # back-lit letters
        canvas.glow(alpha.astype(np.float32) / 255.0, x, y)
    occupied.append((x, y, x + w, y + h))
    return True


def _lighting(rng, canvas: Canvas, rgb: np.ndarray) -> np.ndarray:
    """Version ≥ 2 lighting on the finished scene: dusk, directional sun + vignetting, glare."""
    k = canvas.knobs
    if rng.random() < k.p_dusk:
        dark = _uni(rng, 0.22, 0.45)
        e = 0.0
        if canvas.emissive is not None:  # light spills a little around what emits it
            lit = Image.fromarray((canvas.emissive * 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(3))
            e = np.asarray(lit, np.float32)[..., None] / 255.0
        cast = np.array([_uni(rng, 0.75, 0.9), _uni(rng, 0.85, 0.95), 1.05], np.float32)
        rgb = rgb * (dark * cast * (1 - e) + e * _uni(rng, 1.0, 1.25))
    if rng.random() < k.p_sun:
        ys = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None, None]
        xs = np.linspace(-1, 1, WIDTH, dtype=np.float32)[None, :, None]
        slope = _uni(rng, -0.35, 0.25)
        warm = np.array([_uni(rng, 1.0, 1.12), 1.0, _uni(rng, 0.85, 1.0)], np.float32)
        vign = 1 - _uni(rng, 0.1, 0.35) * (xs ** 2 * 0.6 + (ys * 2 - 1) ** 2 * 0.4)
        rgb = rgb * (1 + slope * (ys - 0.5)) * warm * vign
    if rng.random() < k.p_glare:
        img = Image.new("L", (WIDTH, HEIGHT), 0)
        cx, cy, r = _uni(rng, 0, WIDTH), _uni(rng, 0, HEIGHT * 0.6), _uni(rng, 40, 220)
        ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        g = np.asarray(img.filter(ImageFilter.GaussianBlur(r * 0.6)), np.float32)[..., None] / 255.0
        rgb = rgb + g * _uni(rng, 60, 160)
    return rgb


# ---------------------------------------------------------------- scene elements

def _window(rng, canvas: Canvas, x0, y0, x1, y1, hard_negative: bool) -> None:
    w, h = int(x1 - x0), int(y1 - y0)
    if w < 4 or h < 4:
        return
    frame = _jitter(rng, [(240, 240, 240), (90, 60, 40), (50, 50, 55), (200, 200, 200)][int(rng.integers(4))], 8)
    lit = canvas.knobs.p_lit_window > 0 and rng.random() < canvas.knobs.p_lit_window
    if lit:
        # a lit room: warm, bright, rectangular — glows at dusk, not an ad
        warm = _jitter(rng, (250, 215, 150), 20)
        img = _gradient_patch(rng, w, h, warm, _jitter(rng, (200, 150, 90), 25))
    elif hard_negative:
        # tinted glass, bright curtains or a lit room: coloured, rectangular, but not an ad
        glass = _jitter(rng, SATURATED[int(rng.integers(len(SATURATED)))], 30)
        img = _gradient_patch(rng, w, h, glass, _jitter(rng, glass, 50))
    else:
        top = _jitter(rng, (120, 140, 160), 20)
        img = _gradient_patch(rng, w, h, top, _jitter(rng, (40, 50, 60), 10))
    d = ImageDraw.Draw(img)
    fw = max(1, int(min(w, h) * 0.06))
    d.rectangle((0, 0, w - 1, h - 1), outline=frame, width=fw)
    if rng.random() < 0.7:
        d.line((w // 2, 0, w // 2, h), fill=frame, width=fw)
    if rng.random() < 0.4:
        d.line((0, h // 3, w, h // 3), fill=frame, width=fw)
    canvas.paste(img, int(x0), int(y0), is_ad=False)
    if lit:
        canvas.glow(np.full((h, w), 0.9, np.float32), int(x0), int(y0))
    if rng.random() < 0.3:  # shutters
        sc = _jitter(rng, [(60, 110, 70), (120, 60, 40), (90, 90, 95), (180, 170, 150)][int(rng.integers(4))], 10)
        sw = max(3, w // 3)
        for sx in (x0 - sw, x1):
            canvas.paste(Image.new("RGBA", (sw, h), sc + (255,)), int(sx), int(y0), is_ad=False)


def _balcony(rng, canvas: Canvas, x0, x1, y) -> None:
    w = int(x1 - x0)
    h = int(rng.integers(28, 55))
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    col = _jitter(rng, [(40, 40, 45), (230, 230, 230), (120, 120, 125)][int(rng.integers(3))], 8)
    d.rectangle((0, h - 6, w, h), fill=_jitter(rng, (170, 170, 165), 10))
    d.rectangle((0, 0, w, 3), fill=col)
    step = int(rng.integers(6, 14))
    for bx in range(0, w, step):
        d.line((bx, 0, bx, h - 6), fill=col, width=2)
    canvas.paste(img, int(x0), int(y - h), is_ad=False)


def _door(rng, canvas: Canvas, x0, y0, x1, y1) -> None:
    w, h = int(x1 - x0), int(y1 - y0)
    colour = _jitter(rng, SATURATED[int(rng.integers(len(SATURATED)))] if rng.random() < 0.5 else (90, 60, 40), 20)
    img = Image.new("RGBA", (w, h), colour + (255,))
    d = ImageDraw.Draw(img)
    d.rectangle((w * 0.15, h * 0.1, w * 0.85, h * 0.45), outline=_jitter(rng, colour, 40), width=3)
    d.rectangle((w * 0.15, h * 0.55, w * 0.85, h * 0.9), outline=_jitter(rng, colour, 40), width=3)
    d.ellipse((w * 0.75, h * 0.5, w * 0.82, h * 0.55), fill=(200, 180, 60))
    canvas.paste(img, int(x0), int(y0), is_ad=False)


def _awning(rng, canvas: Canvas, x0, x1, y) -> None:
    w, h = int(x1 - x0), int(rng.integers(25, 60))
    c0 = _jitter(rng, SATURATED[int(rng.integers(len(SATURATED)))], 20)
    c1 = (245, 245, 240) if rng.random() < 0.6 else _jitter(rng, c0, 60)
    img = Image.new("RGBA", (w, h), c0 + (255,))
    d = ImageDraw.Draw(img)
    sw = int(rng.integers(10, 25))
    for sx in range(0, w, 2 * sw):
        d.polygon([(sx, 0), (sx + sw, 0), (sx + sw * 1.1, h), (sx + sw * 0.1, h)], fill=c1)
    canvas.paste(img, int(x0), int(y), is_ad=False)


def _graffiti(rng, canvas: Canvas, x0, y0, x1, y1) -> None:
    w, h = int(x1 - x0), int(y1 - y0)
    if w < 20 or h < 20:
        return
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    col = _jitter(rng, SATURATED[int(rng.integers(len(SATURATED)))], 30) + (230,)
    if rng.random() < 0.5:
        pts = [(_uni(rng, 0, w), _uni(rng, 0, h)) for _ in range(int(rng.integers(6, 16)))]
        d.line(pts, fill=col, width=int(rng.integers(3, 9)), joint="curve")
    else:
        d.text((2, 2), _word(rng), fill=col, font=_font(rng, int(h * 0.7)))
    canvas.paste(img, int(x0), int(y0), is_ad=False)


def _carved_lettering(rng, canvas: Canvas, x0, y0, x1, y1) -> None:
    """Building names in the wall's own colour: text that is not advertising."""
    w, h = int(x1 - x0), int(y1 - y0)
    if w < 30 or h < 10:
        return
    base = canvas.rgb[int(y0):int(y1), int(x0):int(x1)].reshape(-1, 3).mean(0)
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    col = tuple(int(v) for v in np.clip(base * _uni(rng, 0.55, 0.8), 0, 255)) + (255,)
    _text_block(rng, d, (0, 0, w, h), col)
    canvas.paste(img, int(x0), int(y0), is_ad=False)


def _traffic_sign(rng, canvas: Canvas, x, ground) -> None:
    r = int(rng.integers(14, 30))
    pole_h = int(rng.integers(120, 220))
    img = Image.new("RGBA", (2 * r + 2, pole_h + 2 * r), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rectangle((r - 2, r, r + 2, pole_h + 2 * r), fill=(110, 110, 115))
    if rng.random() < 0.5:
        d.ellipse((0, 0, 2 * r, 2 * r), fill=(200, 20, 20))
        d.ellipse((r * 0.3, r * 0.3, r * 1.7, r * 1.7), fill=(245, 245, 245))
    else:
        d.rectangle((0, 0, 2 * r, 2 * r), fill=(20, 80, 180))
        d.polygon([(r, r * 0.4), (r * 1.5, r * 1.5), (r * 0.5, r * 1.5)], fill=(245, 245, 245))
    canvas.paste(img, int(x - r), int(ground - pole_h - 2 * r), is_ad=False)


def _tree(rng, canvas: Canvas, x, ground) -> None:
    size = int(rng.integers(120, 300))
    img = Image.new("RGBA", (size, int(size * 1.6)), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rectangle((size * 0.45, size * 0.6, size * 0.55, size * 1.6), fill=_jitter(rng, (80, 60, 40), 10))
    for _ in range(int(rng.integers(6, 14))):
        cx, cy = _uni(rng, 0.2, 0.8) * size, _uni(rng, 0.15, 0.7) * size
        r = _uni(rng, 0.15, 0.3) * size
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_jitter(rng, (60, 110, 50), 20) + (255,))
    canvas.paste(img, int(x - size / 2), int(ground - size * 1.6), is_ad=False)


def _lamp_post(rng, canvas: Canvas, x, ground) -> None:
    h = int(rng.integers(250, 450))
    img = Image.new("RGBA", (60, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    col = _jitter(rng, (45, 50, 50), 8)
    d.rectangle((27, 10, 33, h), fill=col)
    d.rectangle((10, 0, 50, 14), fill=col)
    canvas.paste(img, int(x - 30), int(ground - h), is_ad=False)


def _person(rng, canvas: Canvas, x, ground) -> None:
    h = int(rng.integers(130, 220))
    w = int(h * 0.32)
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    cloth = _jitter(rng, SATURATED[int(rng.integers(len(SATURATED)))] if rng.random() < 0.4 else (50, 50, 60), 25)
    d.ellipse((w * 0.3, 0, w * 0.7, h * 0.14), fill=_jitter(rng, (200, 160, 130), 30))
    d.rounded_rectangle((w * 0.1, h * 0.14, w * 0.9, h * 0.6), radius=w // 4, fill=cloth)
    d.rectangle((w * 0.2, h * 0.58, w * 0.45, h), fill=_jitter(rng, (40, 40, 60), 15))
    d.rectangle((w * 0.55, h * 0.58, w * 0.8, h), fill=_jitter(rng, (40, 40, 60), 15))
    canvas.paste(img, int(x - w / 2), int(ground - h), is_ad=False)


def _car(rng, canvas: Canvas, x, ground) -> None:
    w = int(rng.integers(220, 380))
    h = int(w * 0.42)
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    body = _jitter(rng, SATURATED[int(rng.integers(len(SATURATED)))], 30)
    d.rounded_rectangle((0, h * 0.4, w, h * 0.85), radius=h // 6, fill=body)
    d.polygon([(w * 0.2, h * 0.42), (w * 0.32, h * 0.05), (w * 0.72, h * 0.05), (w * 0.85, h * 0.42)], fill=body)
    d.polygon([(w * 0.26, h * 0.4), (w * 0.35, h * 0.12), (w * 0.69, h * 0.12), (w * 0.79, h * 0.4)], fill=(60, 80, 100))
    for cx in (w * 0.2, w * 0.8):
        d.ellipse((cx - h * 0.16, h * 0.68, cx + h * 0.16, h), fill=(25, 25, 25))
    canvas.paste(img, int(x - w / 2), int(ground - h), is_ad=False)


# ---------------------------------------------------------------- the scene

AD_KINDS = ("sign", "banner", "poster", "lightbox", "sticker", "billboard")


def _place_ad(rng, canvas: Canvas, kind: str, x, y, w, h, occupied: list) -> bool:
    x, y, w, h = int(x), int(y), int(w), int(h)
    if w < 8 or h < 8 or x < -w // 2 or y < 0 or x + w // 2 > WIDTH or y + h > HEIGHT:
        return False
    for (ox0, oy0, ox1, oy1) in occupied:
        if x < ox1 and x + w > ox0 and y < oy1 and y + h > oy0:
            return False
    patch = make_ad(rng, kind, w, h)
    if kind in ("banner", "sticker", "poster") and rng.random() < 0.35:
        patch = patch.rotate(float(_uni(rng, -8, 8)), resample=Image.BICUBIC, expand=True)
    if kind == "lightbox":  # soft glow on the wall around it: light, not advertising
        glow = Image.new("RGBA", (w + 40, h + 40), (0, 0, 0, 0))
        ImageDraw.Draw(glow).rectangle((10, 10, w + 30, h + 30), fill=(255, 250, 220, 90))
        canvas.paste(glow.filter(ImageFilter.GaussianBlur(8)), x - 20, y - 20, is_ad=False)
    if kind == "billboard":  # legs/frame are structure, not the ad
        canvas.paste(Image.new("RGBA", (w + 12, h + 12), _jitter(rng, (60, 60, 60), 10) + (255,)), x - 6, y - 6, is_ad=False)
    canvas.paste(patch, x, y, is_ad=True)
    if kind == "lightbox":
        canvas.glow(np.asarray(patch.getchannel("A"), np.float32) / 255.0, x, y)
    occupied.append((x, y, x + w, y + h))
    return True


def _building(rng, canvas: Canvas, x0, x1, top, ground, occupied) -> None:
    w, h = x1 - x0, ground - top
    if w < 40 or h < 40:
        return
    material = ["plaster", "plaster", "brick", "panels", "glass"][int(rng.integers(5))]
    canvas.rgb[top:ground, x0:x1] = _MATERIALS[material](rng, h, w)
    if canvas.knobs.texture > 0:
        canvas.rgb[top:ground, x0:x1] += _weathering(rng, h, w, canvas.knobs.texture)
    # cornice
    canvas.rgb[top:top + 8, x0:x1] *= 0.7
    ground_floor = int(_uni(rng, 0.22, 0.35) * h) if h > 200 else h // 2
    gf_top = ground - ground_floor
    # upper floors: window grid
    fh = int(rng.integers(80, 150))
    cols = max(1, int(w / _uni(rng, 90, 170)))
    cw = w / cols
    ww, wh = cw * _uni(rng, 0.35, 0.6), fh * _uni(rng, 0.45, 0.68)
    hard = rng.random() < 0.35
    balcony_rows = set(int(i) for i in rng.choice(20, int(rng.integers(0, 4)), replace=False))
    y = gf_top - fh
    row = 0
    while y > top + 15:
        for c in range(cols):
            cx = x0 + (c + 0.5) * cw
            wy0 = y + (fh - wh) * 0.35
            _window(rng, canvas, cx - ww / 2, wy0, cx + ww / 2, wy0 + wh, hard and rng.random() < 0.35)
            if row in balcony_rows and material != "glass":
                _balcony(rng, canvas, cx - ww * 0.7, cx + ww * 0.7, wy0 + wh + 6)
        y -= fh
        row += 1
    # ground floor: shop units
    units = max(1, int(w / _uni(rng, 160, 320)))
    uw = w / units
    for u in range(units):
        ux0 = x0 + u * uw
        door_w = uw * _uni(rng, 0.18, 0.28)
        win_top = gf_top + ground_floor * _uni(rng, 0.3, 0.42)
        if rng.random() < 0.5:
            _door(rng, canvas, ux0 + uw * 0.06, win_top, ux0 + uw * 0.06 + door_w, ground - 2)
            sx0 = ux0 + uw * 0.1 + door_w
        else:
            sx0 = ux0 + uw * 0.08
        sx1 = ux0 + uw * 0.94
        _window(rng, canvas, sx0, win_top, sx1, ground - ground_floor * 0.08, rng.random() < 0.25)
        # stickers on the shop window
        for _ in range(int(rng.integers(0, 4)) if rng.random() < 0.5 else 0):
            s = _uni(rng, 18, 60)
            _place_ad(rng, canvas, "sticker", _uni(rng, sx0, max(sx0 + 1, sx1 - s)), _uni(rng, win_top, ground - s - 20),
                      s * _uni(rng, 0.7, 1.6), s, occupied)
        r = rng.random()
        band_top, band_h = gf_top + ground_floor * 0.06, ground_floor * _uni(rng, 0.16, 0.28)
        if r < 0.6:  # shop sign over the window
            sw = uw * _uni(rng, 0.5, 0.95)
            if canvas.knobs.p_mounted_letters > 0 and rng.random() < canvas.knobs.p_mounted_letters:
                _mounted_letters(rng, canvas, ux0 + (uw - sw) * _uni(rng, 0.1, 0.9), band_top, sw, band_h * _uni(rng, 0.6, 1.0), occupied)
            else:
                _place_ad(rng, canvas, "sign", ux0 + (uw - sw) * _uni(rng, 0.1, 0.9), band_top, sw, band_h, occupied)
        elif r < 0.78:
            _awning(rng, canvas, sx0 - 6, sx1 + 6, win_top - _uni(rng, 25, 50))
        elif r < 0.88:
            _carved_lettering(rng, canvas, ux0 + uw * 0.15, band_top, ux0 + uw * 0.85, band_top + band_h)
        if rng.random() < 0.25:  # protruding light box
            s = _uni(rng, 35, 80)
            _place_ad(rng, canvas, "lightbox", ux0 + _uni(rng, 0, uw - s), gf_top - s * _uni(rng, 0.2, 1.2), s * _uni(rng, 0.7, 1.4), s, occupied)
    # ads on the upper wall
    k = canvas.knobs
    if k.p_wrap > 0 and rng.random() < k.p_wrap and gf_top - top > 150:
        ww_, wh_ = w * _uni(rng, 0.4, 0.9), (gf_top - top) * _uni(rng, 0.35, 0.8)
        _place_ad(rng, canvas, "wrap", _uni(rng, x0, x1 - ww_), _uni(rng, top + 10, max(top + 11, gf_top - wh_ - 5)), ww_, wh_, occupied)
    if k.p_upper_letters > 0 and rng.random() < k.p_upper_letters:
        lh = _uni(rng, 25, 80)
        lw = min(w * 0.9, lh * _uni(rng, 3, 8))
        _mounted_letters(rng, canvas, _uni(rng, x0, x1 - lw), _uni(rng, top + 12, max(top + 13, gf_top - lh - 10)), lw, lh, occupied)
    for _ in range(int(rng.integers(0, 3))):
        kind = ["banner", "poster", "billboard", "banner", "lightbox"][int(rng.integers(5))]
        if kind == "banner":
            if rng.random() < 0.5:
                bw, bh = _uni(rng, 40, 110), _uni(rng, 180, 420)
            else:
                bw, bh = _uni(rng, 220, min(700, w)), _uni(rng, 45, 110)
        elif kind == "poster":
            bw = _uni(rng, 70, 200)
            bh = bw * _uni(rng, 1.2, 1.5)
        elif kind == "billboard":
            bw = _uni(rng, 220, min(620, w))
            bh = bw * _uni(rng, 0.3, 0.5)
        else:
            bw = bh = _uni(rng, 40, 90)
        _place_ad(rng, canvas, kind, _uni(rng, x0, max(x0 + 1, x1 - bw)), _uni(rng, top + 10, max(top + 11, gf_top - bh)), bw, bh, occupied)
    if rng.random() < 0.35:
        gx = _uni(rng, x0, x1 - 120)
        _graffiti(rng, canvas, gx, ground - _uni(rng, 60, 140), gx + _uni(rng, 80, 220), ground - 10)
    if rng.random() < 0.25:
        _carved_lettering(rng, canvas, x0 + w * 0.2, top + 14, x0 + w * 0.8, top + 14 + _uni(rng, 20, 40))


def _sky(rng, h) -> np.ndarray:
    top = np.array(_jitter(rng, [(110, 160, 220), (170, 190, 210), (200, 200, 205), (240, 190, 150)][int(rng.integers(4))], 12), np.float32)
    bottom = np.clip(top + _uni(rng, 20, 50), 0, 255)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = top * (1 - t) + bottom * t
    clouds = np.clip(_lowfreq(rng, h, WIDTH, 10) * 1.5, 0, 1)[..., None] * _uni(rng, 0, 60)
    return np.broadcast_to(sky, (h, WIDTH, 3)) + clouds


def _perspective(rng, img: Image.Image, mask: Image.Image, strength: float):
    """A mild projective warp: the output shows a random quadrilateral inside the picture."""
    m = strength * min(WIDTH, HEIGHT)
    src = [(_uni(rng, 0, m), _uni(rng, 0, m)), (WIDTH - _uni(rng, 0, m), _uni(rng, 0, m)),
           (WIDTH - _uni(rng, 0, m), HEIGHT - _uni(rng, 0, m)), (_uni(rng, 0, m), HEIGHT - _uni(rng, 0, m))]
    dst = [(0, 0), (WIDTH, 0), (WIDTH, HEIGHT), (0, HEIGHT)]
    a = []
    b = []
    for (xs, ys), (xd, yd) in zip(src, dst):
        a.append([xd, yd, 1, 0, 0, 0, -xs * xd, -xs * yd])
        a.append([0, 0, 0, xd, yd, 1, -ys * xd, -ys * yd])
        b += [xs, ys]
    coeffs = np.linalg.solve(np.array(a, np.float64), np.array(b, np.float64))
    return (img.transform((WIDTH, HEIGHT), Image.PERSPECTIVE, tuple(coeffs), Image.BILINEAR),
            mask.transform((WIDTH, HEIGHT), Image.PERSPECTIVE, tuple(coeffs), Image.NEAREST))


def render(seed: int, jpeg_quality: int | None = None, generator: int = 1) -> tuple[Image.Image, np.ndarray]:
    """Draw one facade photograph. Returns (RGB image 1152×768, mask uint8 0/1 of the same size).

    ``jpeg_quality`` None draws a random quality in [45, 92] for the artefacts; the returned image
    has been through that JPEG round-trip either way. ``generator`` is the version of
    :data:`GENERATORS` (1: the original generator).
    """
    check_fonts()
    knobs = GENERATORS[generator]
    rng = np.random.default_rng(seed)
    canvas = Canvas(np.zeros((HEIGHT, WIDTH, 3), np.float32), np.zeros((HEIGHT, WIDTH), np.uint8), knobs,
                    np.zeros((HEIGHT, WIDTH), np.float32) if knobs.version >= 2 else None)
    sky_h = int(_uni(rng, 0.0, 0.25) * HEIGHT)
    street_h = int(_uni(rng, 0.04, 0.16) * HEIGHT)
    ground = HEIGHT - street_h
    canvas.rgb[:] = _sky(rng, HEIGHT)
    # street: sidewalk and asphalt
    canvas.rgb[ground:] = np.array(_jitter(rng, (150, 148, 142), 12), np.float32)
    road = ground + int(street_h * _uni(rng, 0.3, 0.6))
    canvas.rgb[road:] = np.array(_jitter(rng, (70, 72, 75), 8), np.float32) + rng.normal(0, 6, (HEIGHT - road, WIDTH, 1))
    occupied: list = []
    n = int(rng.choice([1, 2, 2, 3]))
    edges = np.sort(rng.uniform(0.2, 0.8, n - 1)) * WIDTH
    xs = [0, *[int(e) for e in edges], WIDTH]
    for i in range(n):
        top = max(0, sky_h + int(_uni(rng, -0.1, 0.12) * HEIGHT)) if rng.random() < 0.8 else 0
        _building(rng, canvas, xs[i], xs[i + 1], top, ground, occupied)
    if rng.random() < 0.3 and sky_h > 80:  # rooftop billboard against the sky
        bw = _uni(rng, 200, 500)
        _place_ad(rng, canvas, "billboard", _uni(rng, 0, WIDTH - bw), _uni(rng, 5, sky_h * 0.5), bw, bw * _uni(rng, 0.25, 0.4), occupied)
    # occluders in front (they hide parts of ads: the mask follows)
    for _ in range(int(rng.integers(0, 5))):
        x = _uni(rng, 0, WIDTH)
        kind = int(rng.integers(5))
        gy = ground + _uni(rng, 0, street_h)
        [_tree, _lamp_post, _person, _car, _traffic_sign][kind](rng, canvas, x, gy)
    # shadows: a dark polygon from one side, and lighting
    if rng.random() < 0.6:
        shade = Image.new("L", (WIDTH, HEIGHT), 0)
        x_a, x_b = _uni(rng, 0, WIDTH), _uni(rng, 0, WIDTH)
        pts = [(0, _uni(rng, 0, HEIGHT)), (x_a, 0), (x_b, 0)] if rng.random() < 0.5 else [(x_a, 0), (x_b, HEIGHT), (0, HEIGHT), (0, 0)]
        ImageDraw.Draw(shade).polygon(pts, fill=255)
        s = np.asarray(shade.filter(ImageFilter.GaussianBlur(_uni(rng, 2, 12))), np.float32)[..., None] / 255.0
        canvas.rgb *= 1 - s * _uni(rng, 0.25, 0.5)
    gain = _uni(rng, 0.6, 1.25) * np.array([_uni(rng, 0.9, 1.1), 1.0, _uni(rng, 0.88, 1.12)], np.float32)
    grad = (1 + _uni(rng, -0.25, 0.25) * np.linspace(-1, 1, WIDTH, dtype=np.float32))[None, :, None]
    rgb = canvas.rgb * gain * grad
    if knobs.version >= 2:
        rgb = _lighting(rng, canvas, rgb)
    contrast = _uni(rng, 0.75, 1.2)
    rgb = (rgb - 128) * contrast + 128 + rng.normal(0, _uni(rng, 1, 7), rgb.shape)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    mask = Image.fromarray(canvas.mask, "L")
    if rng.random() < 0.7:
        img, mask = _perspective(rng, img, mask, _uni(rng, 0.02, 0.08))
    if rng.random() < 0.4:
        img = img.filter(ImageFilter.GaussianBlur(_uni(rng, 0.4, 1.2)))
    q = int(rng.integers(45, 93)) if jpeg_quality is None else jpeg_quality
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    buf.seek(0)
    img = Image.open(buf).convert("RGB")
    return img, np.asarray(mask, np.uint8).copy()
