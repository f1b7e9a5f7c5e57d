"""yuv420p pictures as numpy arrays: BT.709 conversion from RGB, rectangles and pasting.

Chroma is subsampled 2x2, so sizes and the coordinates of anything painted are even.
"""
from __future__ import annotations

import numpy as np


def even(x) -> int:
    """The nearest even integer."""
    return round(x / 2.0) * 2


def even_down(x) -> int:
    """The largest even integer not above `x` (for x >= 0)."""
    return int(x) // 2 * 2


def rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.709 limited-range conversion of an (h, w, 3) uint8 array with even h, w."""
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    Y = 16.0 + y * (219.0 / 255.0)
    # Each 2x2 block's mean: four bytes summed exactly in 16 bits, then a quarter (exact
    # too): what a float mean over the block gives, at a third of the cost.
    wide = rgb.astype(np.uint16)
    quad = wide[0::2, 0::2] + wide[0::2, 1::2] + wide[1::2, 0::2] + wide[1::2, 1::2]
    sub = quad.astype(np.float32) * np.float32(0.25)
    rs, gs, bs = sub[..., 0], sub[..., 1], sub[..., 2]
    ys = 0.2126 * rs + 0.7152 * gs + 0.0722 * bs
    U = 128.0 + (bs - ys) / 1.8556 * (224.0 / 255.0)
    V = 128.0 + (rs - ys) / 1.5748 * (224.0 / 255.0)

    def q(a):
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)

    return q(Y), q(U), q(V)


def color_yuv(rgb) -> tuple[int, int, int]:
    """One RGB colour as its (Y, U, V) values."""
    Y, U, V = rgb_to_yuv(np.array(rgb, np.uint8).reshape(1, 1, 3).repeat(2, 0).repeat(2, 1))
    return int(Y[0, 0]), int(U[0, 0]), int(V[0, 0])


class YuvPicture:
    """A yuv420p picture as one flat buffer with plane views."""

    def __init__(self, width, height, buf=None):
        self.w, self.h = width, height
        n = width * height
        self.buf = np.empty(n * 3 // 2, np.uint8) if buf is None else buf
        self.Y = self.buf[:n].reshape(height, width)
        self.U = self.buf[n:n + n // 4].reshape(height // 2, width // 2)
        self.V = self.buf[n + n // 4:].reshape(height // 2, width // 2)

    @classmethod
    def on_frame(cls, frame) -> YuvPicture:
        """Writable plane views straight onto a yuv420p av.VideoFrame's buffers."""
        pic = cls.__new__(cls)
        pic.w, pic.h, pic.buf = frame.width, frame.height, None
        views = []
        for k, plane in enumerate(frame.planes[:3]):
            pw, ph = (pic.w, pic.h) if k == 0 else (pic.w // 2, pic.h // 2)
            views.append(np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:ph, :pw])
        pic.Y, pic.U, pic.V = views
        return pic

    @property
    def array(self) -> np.ndarray:
        return self.buf.reshape(self.h * 3 // 2, self.w)

    @classmethod
    def from_rgb(cls, rgb: np.ndarray) -> YuvPicture:
        h, w = rgb.shape[:2]
        pic = cls(w, h)
        pic.Y[:], pic.U[:], pic.V[:] = rgb_to_yuv(rgb)
        return pic

    def fill(self, x0, y0, x1, y1, yuv):
        """Paint a rectangle (all coordinates even)."""
        if x1 <= x0 or y1 <= y0:
            return
        self.Y[y0:y1, x0:x1] = yuv[0]
        self.U[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = yuv[1]
        self.V[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = yuv[2]

    def paste(self, x0, y0, patch: YuvPicture):
        self.Y[y0:y0 + patch.h, x0:x0 + patch.w] = patch.Y
        cy, cx = y0 // 2, x0 // 2
        self.U[cy:cy + patch.h // 2, cx:cx + patch.w // 2] = patch.U
        self.V[cy:cy + patch.h // 2, cx:cx + patch.w // 2] = patch.V
