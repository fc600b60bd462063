"""Drawing one dermoscopy-like lesion on skin after the ABCD rule, from its own random stream.

Malignant lesions are on average more Asymmetric, have more irregular Borders, more Colours (black,
blue-grey, red, white, contrasting dark and pale patches) and a larger Diameter; benign ones are rounder,
smoother and uniformly brown. One latent "atypia" score per lesion, drawn from overlapping per-class Beta
distributions, drives all four features (each with its own noise), so some benign lesions look atypical and
some malignant ones look innocent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class LesionFeatures:
    """The ABCD parameters of one lesion, drawn before rendering (and useful to check the classes differ)."""

    label: int
    atypia: float  # latent 0..1 score that drives all four ABCD features together
    diameter: float  # fraction of the image width
    asymmetry: float  # 0..1: strength of the odd harmonics of the outline and of the eccentric pigment
    irregularity: float  # 0..1: strength of the high harmonics of the outline
    base_colour: RGB
    extra_colours: tuple[str, ...]
    variegation: float  # 0..1: contrast of dark and pale patches that leave the mean colour roughly unchanged


@dataclass(frozen=True)
class Structure:
    """How one extra colour is drawn inside a lesion."""

    colour: RGB
    softness: float  # width of the blotch edge, in units of the texture field's spread
    opacity: tuple[float, float]  # range of the blotch's peak opacity


def structures() -> dict[str, Structure]:
    """Colours of lesion structures seen in dermoscopy; blue-grey veils and white scars are soft, black is sharp."""
    return {
        "light_brown": Structure((170.0, 118.0, 82.0), 0.8, (0.5, 0.8)),
        "dark_brown": Structure((80.0, 48.0, 32.0), 0.6, (0.6, 0.9)),
        "black": Structure((32.0, 24.0, 24.0), 0.35, (0.75, 0.95)),
        "blue_grey": Structure((100.0, 112.0, 138.0), 0.6, (0.6, 0.9)),
        "red": Structure((178.0, 78.0, 78.0), 0.5, (0.5, 0.8)),
        "white": Structure((218.0, 205.0, 198.0), 0.5, (0.6, 0.85)),
    }


def atypia_beta(label: int) -> tuple[float, float]:
    """Beta(a, b) of the latent atypia of benign (0) or malignant (1) lesions; they overlap on purpose.

    Alone, the atypia separates the classes with a ROC AUC of about 0.93; the per-feature noise added in
    ``sample_lesion`` keeps what any model can reach from the pixels a little lower.
    """
    return (2.0, 5.0) if label == 0 else (4.5, 2.5)


def sample_lesion(rng: np.random.Generator, label: int) -> LesionFeatures:
    """Draw the ABCD features of one lesion of class ``label``: all follow its atypia, each with its own noise."""
    atypia = float(rng.beta(*atypia_beta(label)))
    diameter = float(np.clip(0.42 + 0.4 * atypia + rng.normal(0.0, 0.07), 0.25, 0.95))
    asymmetry = float(np.clip(atypia + rng.normal(0.0, 0.15), 0.0, 1.0))
    irregularity = float(np.clip(atypia + rng.normal(0.0, 0.15), 0.0, 1.0))
    darkness = rng.uniform(0.0, 1.0)
    tan, brown = np.array([188.0, 138.0, 100.0]), np.array([98.0, 60.0, 40.0])
    base = tan + (brown - tan) * darkness + rng.normal(0.0, 6.0, 3)
    count = int(np.clip(np.rint(4.5 * atypia + rng.normal(0.0, 0.5)), 0, 4))
    names = list(structures())
    atypical_weight = {"black": 2.0, "blue_grey": 3.0, "red": 1.0, "white": 1.0}
    weights = np.array(
        [0.02 + (atypia**2 * atypical_weight[name] if name in atypical_weight else 1.0 - atypia) for name in names]
    )
    chosen = rng.choice(len(names), size=count, replace=False, p=weights / weights.sum())
    return LesionFeatures(
        label=label,
        atypia=atypia,
        diameter=diameter,
        asymmetry=asymmetry,
        irregularity=irregularity,
        base_colour=(float(base[0]), float(base[1]), float(base[2])),
        extra_colours=tuple(names[index] for index in chosen),
        variegation=float(np.clip(1.8 * (atypia - 0.3) + rng.normal(0.0, 0.15), 0.0, 0.85)),
    )


@dataclass(frozen=True)
class Grid:
    """Pixel-centre coordinates in image widths, centred on the middle of the image."""

    axis: np.ndarray  # 1-D coordinates along either side
    x: np.ndarray  # column coordinate of every pixel
    y: np.ndarray  # row coordinate of every pixel


def pixel_grid(size: int) -> Grid:
    """Coordinates of a size x size image, so that shapes scale with the image size."""
    axis = (np.arange(size, dtype=np.float64) + 0.5) / size - 0.5
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return Grid(axis, x, y)


def smooth_field(rng: np.random.Generator, axis: np.ndarray, waves: int, max_cycles: float) -> np.ndarray:
    """Low-frequency random texture with unit spread: a sum of random plane waves (cheap, resolution-free).

    Each wave cos(a x + b y + p) is split into products of 1-D cosines and sines, so the whole field is
    two small sums of outer products (no BLAS, so exactly reproducible) instead of ``waves`` full-image cosines.
    """
    frequencies = rng.uniform(-max_cycles, max_cycles, size=(waves, 2))
    phases = rng.uniform(0.0, 2.0 * np.pi, size=waves)
    amplitudes = rng.uniform(0.5, 1.0, size=waves)
    along_x = 2.0 * np.pi * frequencies[:, 0, None] * axis
    along_y = 2.0 * np.pi * frequencies[:, 1, None] * axis + phases[:, None]
    weighted = amplitudes[:, None]
    field = np.einsum("ki,kj->ij", weighted * np.cos(along_y), np.cos(along_x))
    field -= np.einsum("ki,kj->ij", weighted * np.sin(along_y), np.sin(along_x))
    return field / np.sqrt(0.5 * np.sum(amplitudes**2))


def skin_background(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    """Skin of a random tone with uneven lighting, pores and fine noise, as float RGB in 0..255."""
    light, dark = np.array([236.0, 198.0, 176.0]), np.array([160.0, 108.0, 78.0])
    tone = light + (dark - light) * rng.uniform(0.0, 1.0) + rng.normal(0.0, 7.0, 3)
    shading = 1.0 + 0.06 * smooth_field(rng, grid.axis, waves=4, max_cycles=1.5)
    shading += rng.uniform(-0.08, 0.08) * grid.x + rng.uniform(-0.08, 0.08) * grid.y
    if rng.random() < 0.15:
        radius = np.hypot(grid.x, grid.y)
        edge = rng.uniform(0.5, 0.7)
        shading *= np.clip(1.0 - (radius - edge) / 0.08, 0.15, 1.0)
    pores = 1.0 - rng.uniform(0.05, 0.2) * (rng.random(grid.x.shape) < rng.uniform(0.005, 0.03))
    grain = 1.0 + rng.normal(0.0, rng.uniform(0.01, 0.035), grid.x.shape)
    return tone * (shading * pores * grain)[..., None]


def lesion_boundary(rng: np.random.Generator, features: LesionFeatures, theta: np.ndarray) -> np.ndarray:
    """Boundary radius (relative to the mean radius) at each angle: low harmonics for asymmetry, high for the border.

    The outline is computed on a fine table of angles and interpolated, far cheaper than per-pixel cosines.
    """
    table = np.linspace(-np.pi, np.pi, 721)
    radius = np.ones_like(table)
    for harmonic in (1, 3):
        amplitude = features.asymmetry * rng.uniform(0.1, 0.25) / np.sqrt(harmonic)
        radius += amplitude * np.cos(harmonic * table + rng.uniform(0.0, 2.0 * np.pi))
    for harmonic in range(4, 15):
        amplitude = features.irregularity * rng.uniform(0.0, 0.12) / np.sqrt(harmonic - 2)
        radius += amplitude * np.cos(harmonic * table + rng.uniform(0.0, 2.0 * np.pi))
    return np.interp(theta, table, np.maximum(radius, 0.35))


def lesion_layer(rng: np.random.Generator, features: LesionFeatures, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Opacity (0..1) and float RGB colour of the lesion over the whole image."""
    centre = rng.normal(0.0, 0.05, 2).clip(-0.12, 0.12)
    rotation = rng.uniform(0.0, np.pi)
    stretch = np.sqrt(rng.uniform(1.0, 1.35) + 0.3 * features.asymmetry * rng.random())
    dx, dy = grid.x - centre[0], grid.y - centre[1]
    u = (dx * np.cos(rotation) + dy * np.sin(rotation)) / stretch
    v = (-dx * np.sin(rotation) + dy * np.cos(rotation)) * stretch
    mean_radius = features.diameter / 2.0
    boundary = mean_radius * lesion_boundary(rng, features, np.arctan2(v, u))
    depth = 1.0 - np.hypot(u, v) / boundary  # 1 at the centre, 0 on the border, negative outside
    softness = rng.uniform(0.06, 0.3) * (1.0 - 0.6 * features.irregularity)
    opacity = np.clip(depth / softness + 0.5, 0.0, 1.0) * rng.uniform(0.8, 1.0)
    colour = lesion_colour(rng, features, grid, depth, mean_radius)
    return opacity, colour


def lesion_colour(
    rng: np.random.Generator, features: LesionFeatures, grid: Grid, depth: np.ndarray, mean_radius: float
) -> np.ndarray:
    """Brown body darker towards the middle, with a pigment network, blotches of extra colours, dark/pale patches."""
    inside = np.clip(depth, 0.0, 1.0)
    cycles = 1.0 / max(mean_radius, 0.05)
    shade = 1.0 - rng.uniform(0.0, 0.3) * inside + 0.04 * smooth_field(rng, grid.axis, waves=5, max_cycles=cycles)
    shade *= 1.0 - pigment_network(rng, features, grid, mean_radius) * (depth > 0.0)
    colour = np.asarray(features.base_colour) * shade[..., None]
    lesion_pixels = depth > 0.0
    structures_by_name = structures()
    direction = rng.normal(0.0, 1.0, 2)
    eccentric = (direction[0] * grid.x + direction[1] * grid.y) / (np.hypot(*direction) * mean_radius + 1e-9)
    for name in features.extra_colours:
        structure = structures_by_name[name]
        field = smooth_field(rng, grid.axis, waves=5, max_cycles=cycles) + 0.6 * features.asymmetry * eccentric
        coverage = min(0.1 + 0.6 * features.atypia + rng.uniform(0.0, 0.15), 0.8)
        threshold = np.quantile(field[lesion_pixels], 1.0 - coverage) if lesion_pixels.any() else np.inf
        peak = rng.uniform(*structure.opacity)
        blotch = np.clip((field - threshold) / structure.softness + 0.5, 0.0, 1.0) * peak
        colour += (np.asarray(structure.colour) - colour) * blotch[..., None]
    patches = np.tanh(smooth_field(rng, grid.axis, waves=12, max_cycles=2.0 * cycles) / 0.4) * features.variegation
    dark, pale = np.array([44.0, 32.0, 34.0]), np.array([198.0, 172.0, 168.0])
    colour += (dark - colour) * np.clip(patches, 0.0, 1.0)[..., None]
    colour += (pale - colour) * np.clip(-patches, 0.0, 1.0)[..., None]
    return colour


def pigment_network(rng: np.random.Generator, features: LesionFeatures, grid: Grid, mean_radius: float) -> np.ndarray:
    """Darkening (0..1) by a pigment network: a regular mesh when typical, warped, thick and broken when not."""
    period = mean_radius * rng.uniform(0.3, 0.45)
    warp = (0.1 + 0.5 * features.irregularity) * period
    angle = rng.uniform(0.0, np.pi)
    along = (grid.x * np.cos(angle) + grid.y * np.sin(angle)) / period
    across = (-grid.x * np.sin(angle) + grid.y * np.cos(angle)) / period
    cycles = 2.0 / period
    along = along + warp / period * smooth_field(rng, grid.axis, waves=4, max_cycles=cycles)
    across = across + warp / period * smooth_field(rng, grid.axis, waves=4, max_cycles=cycles)
    distance = np.minimum(np.abs(np.sin(np.pi * along)), np.abs(np.sin(np.pi * across)))
    width = 0.25 + 0.25 * features.irregularity * rng.random()
    lines = np.exp(-((distance / width) ** 2))
    broken = np.clip(0.5 + features.irregularity * smooth_field(rng, grid.axis, waves=4, max_cycles=cycles), 0.0, 1.0)
    return rng.uniform(0.08, 0.25) * lines * (1.0 - 0.8 * features.irregularity + 0.8 * features.irregularity * broken)


def hair_layer(rng: np.random.Generator, size: int) -> np.ndarray:
    """Opacity (0..1) of a few thin dark curved hairs, antialiased by drawing at twice the size."""
    scale = 2
    canvas = Image.new("L", (size * scale, size * scale), 0)
    draw = ImageDraw.Draw(canvas)
    steps = np.linspace(0.0, 1.0, 24)[:, None]
    for _ in range(int(rng.integers(1, 7))):
        start, end = rng.uniform(-0.1, 1.1, 2), rng.uniform(-0.1, 1.1, 2)
        bend = (start + end) / 2.0 + rng.normal(0.0, 0.25, 2)
        curve = (1 - steps) ** 2 * start + 2 * (1 - steps) * steps * bend + steps**2 * end
        points = [(float(px), float(py)) for px, py in curve * size * scale]
        width = max(1, round(size / 96 * scale * rng.uniform(0.7, 1.5)))
        draw.line(points, fill=int(rng.integers(170, 256)), width=width, joint="curve")
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64) / 255.0


def render_image(rng: np.random.Generator, features: LesionFeatures, size: int) -> np.ndarray:
    """One size x size x 3 uint8 dermoscopy-like image of the lesion ``features`` on skin."""
    grid = pixel_grid(size)
    image = skin_background(rng, grid)
    opacity, colour = lesion_layer(rng, features, grid)
    image += (colour - image) * opacity[..., None]
    if rng.random() < 0.3:
        hair_colour = np.array([45.0, 32.0, 26.0]) * rng.uniform(0.6, 1.4)
        hair = hair_layer(rng, size)
        image += (hair_colour - image) * hair[..., None]
    image += rng.normal(0.0, 2.0, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
