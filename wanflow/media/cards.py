"""Painting preview cards: the frames of an animatic that shows a shot's id, timing and prompt.

The layout (text, panels) is drawn once with Pillow and converted to YUV; each frame then
only copies that picture and paints the moving parts (progress bar, bouncing block,
timecode digits from pre-rendered glyphs) straight into the encoder's frame buffers.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .yuv import YuvPicture, color_yuv, even, even_down


@dataclass(frozen=True)
class PreviewCard:
    scene: str
    shot: str
    take: int
    prompt: str
    duration: float
    width: int
    height: int
    fps: int
    model: str = ""
    label: str = "PREVIEW"


_BG = (20, 24, 33)
_PANEL = (34, 40, 52)
_TRACK = (52, 60, 76)
_ACCENT = (245, 158, 11)
_BLOCK = (56, 189, 248)
_TEXT = (235, 238, 243)
_DIM = (148, 160, 180)


# --------------------------------------------------------------------------- text


@functools.lru_cache(maxsize=64)
def _font_cached(size: int):
    return ImageFont.load_default(size=size)


def _font(size: int):
    return _font_cached(max(8, int(size)))


def _wrap(text: str, font, max_width: float) -> list[str]:
    """Greedy word wrap; words wider than a line (or unspaced scripts) break by character."""
    lines: list[str] = []
    for para in str(text).splitlines() or [""]:
        line = ""
        for word in para.split():
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= max_width:
                line = candidate
                continue
            if line:
                lines.append(line)
                line = ""
            while font.getlength(word) > max_width and len(word) > 1:
                lo, hi = 1, len(word)
                while lo < hi:  # longest prefix that fits
                    mid = (lo + hi + 1) // 2
                    if font.getlength(word[:mid]) <= max_width:
                        lo = mid
                    else:
                        hi = mid - 1
                lines.append(word[:lo])
                word = word[lo:]
            line = word
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _ellipsize(text: str, font, max_width: float) -> str:
    if font.getlength(text) <= max_width:
        return text
    while text and font.getlength(text + "…") > max_width:
        text = text[:-1]
    return text.rstrip() + "…"


def _line_height(font) -> int:
    ascent, descent = font.getmetrics()
    return even(ascent + descent)


def _clock(centis: int) -> str:
    return f"{centis // 6000 % 100:02d}:{centis // 100 % 60:02d}.{centis % 100:02d}"


# --------------------------------------------------------------------------- cards


def text_card(text: str, width: int, height: int) -> np.ndarray:
    """An RGB still in the preview style showing `text`, centred and wrapped."""
    u = min(width, height)
    img = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(img)
    m = max(2, u // 20)
    draw.rectangle((m // 2, m // 2, width - 1 - m // 2, height - 1 - m // 2),
                   outline=_ACCENT, width=max(1, u // 100))
    font = _font(max(8, u // 12))
    lh = int(_line_height(font) * 1.2)
    lines = _wrap(text, font, width - 2 * m)
    fit = max(1, (height - 2 * m) // max(1, lh))
    lines = lines[:fit]
    y = (height - lh * len(lines)) // 2
    for line in lines:
        x = (width - font.getlength(line)) / 2
        draw.text((x, y), line, font=font, fill=_TEXT)
        y += lh
    return np.asarray(img)


class CardPainter:
    """Static layout drawn once with Pillow; moving parts painted per frame in YUV."""

    def __init__(self, card: PreviewCard, n_frames: int):
        w, h = card.width, card.height
        self.card, self.n = card, n_frames
        self.c_accent = color_yuv(_ACCENT)
        self.c_block = color_yuv(_BLOCK)
        self.clock_slots: list[int | None] = []
        self.frame_slots: list[int] = []
        self.glyphs: list[YuvPicture] = []
        self.tc_y0 = 0
        u = min(w, h)
        if u < 64:
            self._tiny(w, h)
            return
        m = max(8, even(u * 0.05))
        img = Image.new("RGB", (w, h), _BG)
        draw = ImageDraw.Draw(img)

        # Bottom panel: moving-block lane, timecode line, progress bar.
        f_tc = _font(max(10, u // 20))
        tc_h = _line_height(f_tc) + 2
        bar_h = max(4, even(u / 70))
        lane_h = max(6, even(u / 30))
        gap = max(4, even(u / 60))
        bar_y1 = h - m
        bar_y0 = bar_y1 - bar_h
        tc_y1 = bar_y0 - gap
        tc_y0 = tc_y1 - tc_h
        lane_y1 = tc_y0 - gap
        lane_y0 = lane_y1 - lane_h
        panel_y0 = max(0, even_down(lane_y0 - gap))
        draw.rectangle((0, panel_y0, w - 1, h - 1), fill=_PANEL)
        x0, x1 = m, w - m
        self.track = (x0, x1)
        draw.rectangle((x0, bar_y0, x1 - 1, bar_y1 - 1), fill=_TRACK)
        draw.rectangle((x0, lane_y0, x1 - 1, lane_y1 - 1), fill=_BG)
        self.bar = (bar_y0, bar_y1)
        self.lane = (lane_y0, lane_y1)
        self.block_w = max(8, even(w / 12))

        # Timecode: dynamic digits are glyph patches at even x; the rest is static.
        cell = even(max(f_tc.getlength(d) for d in "0123456789") + 1)
        for d in "0123456789":
            g = Image.new("RGB", (cell, tc_h), _PANEL)
            ImageDraw.Draw(g).text((0, 0), d, font=f_tc, fill=_TEXT)
            self.glyphs.append(YuvPicture.from_rgb(np.asarray(g)))
        slots, x = self._layout(draw, f_tc, m, tc_y0, "##:##.##", cell, _TEXT)
        self.clock_slots = [sx if sx + cell <= w else None for sx in slots]
        total = _clock(round(card.duration * 100))
        _, x = self._layout(draw, f_tc, x, tc_y0, f" / {total}", cell, _DIM)
        digits = len(str(n_frames))
        template = "frame " + "#" * digits + f" / {n_frames}"
        width = sum(cell if c == "#" else even(f_tc.getlength(c) + 1) for c in template)
        if even_down(w - m - width) >= x + cell:  # only when it fits beside the clock
            self.frame_slots, _ = self._layout(draw, f_tc, even_down(w - m - width), tc_y0,
                                               template, cell, _DIM)
        self.tc_y0 = tc_y0

        # Header: label badge, scene/shot/take, model and format.
        f_label = _font(max(12, u // 11))
        f_head = _font(max(10, u // 17))
        f_info = _font(max(9, u // 28))
        label = card.label or "PREVIEW"
        pad = max(4, u // 60)
        lh = _line_height(f_label)
        lw = int(f_label.getlength(label))
        y = m
        draw.rectangle((m, y, m + lw + 2 * pad, y + lh + pad), fill=_ACCENT)
        draw.text((m + pad, y + pad // 2), label, font=f_label, fill=(0, 0, 0))
        # The label again at the top right, small, so a cropped view still shows it.
        small = _ellipsize(label, f_info, w / 3)
        draw.text((w - m - f_info.getlength(small), y), small, font=f_info, fill=_ACCENT)
        y += lh + pad + gap
        head = f"Scene {card.scene}  ·  Shot {card.shot}  ·  Take {card.take}"
        draw.text((m, y), _ellipsize(head, f_head, w - 2 * m), font=f_head, fill=_TEXT)
        y += _line_height(f_head) + gap // 2
        info = [card.model] if card.model else []
        info += [f"{w}x{h}", f"{card.fps} fps", f"{card.duration:.2f} s"]
        draw.text((m, y), _ellipsize("  ·  ".join(info), f_info, w - 2 * m), font=f_info,
                  fill=_DIM)
        y += _line_height(f_info) + gap
        draw.line((m, y, w - m, y), fill=_TRACK, width=max(1, u // 360))
        y += gap

        # Prompt, word-wrapped into the space left.
        f_prompt = _font(max(9, u // 24))
        ph = int(_line_height(f_prompt) * 1.15)
        avail = panel_y0 - gap - y
        lines = _wrap(card.prompt, f_prompt, w - 2 * m)
        fit = max(0, avail // ph) if ph else 0
        if len(lines) > fit:
            lines = lines[:fit]
            if lines:
                lines[-1] = _ellipsize(lines[-1] + " …", f_prompt, w - 2 * m)
        for line in lines:
            draw.text((m, y), line, font=f_prompt, fill=_TEXT)
            y += ph

        self.base = YuvPicture.from_rgb(np.asarray(img))

    def _tiny(self, w, h):
        """Under 64 px no text is legible: an accent frame, the moving block and the bar."""
        img = Image.new("RGB", (w, h), _BG)
        ImageDraw.Draw(img).rectangle((0, 0, w - 1, h - 1), outline=_ACCENT, width=2)
        self.track = (2, w - 2)
        self.bar = (h - 4, h - 2)
        lane_h = max(2, even_down(h / 4))
        self.lane = (h - 6 - lane_h, h - 6)
        self.block_w = max(2, even(w / 8))
        self.base = YuvPicture.from_rgb(np.asarray(img))

    @staticmethod
    def _layout(draw, font, x, y, template, cell, fill):
        """Draw the static characters of `template`; '#' marks a digit slot. Returns slots."""
        slots = []
        for ch in template:
            if ch == "#":
                slots.append(x)
                x += cell
            else:
                draw.text((x, y), ch, font=font, fill=fill)
                x += even(font.getlength(ch) + 1)
        return slots, x

    def frame(self, i: int):
        """Frame i as a new yuv420p av.VideoFrame (static layer + moving parts)."""
        card, base = self.card, self.base
        frame = av.VideoFrame(base.w, base.h, "yuv420p")
        pic = YuvPicture.on_frame(frame)
        np.copyto(pic.Y, base.Y)
        np.copyto(pic.U, base.U)
        np.copyto(pic.V, base.V)
        x0, x1 = self.track
        span = x1 - x0
        fill = even_down(span * (i + 1) / self.n)
        pic.fill(x0, self.bar[0], x0 + fill, self.bar[1], self.c_accent)
        period = max(2, 2 * card.fps)
        phase = (i % period) / period
        tri = 1.0 - abs(2.0 * phase - 1.0)
        bx = x0 + even_down(tri * (span - self.block_w))
        pic.fill(bx, self.lane[0], bx + self.block_w, self.lane[1], self.c_block)
        clock = _clock(i * 100 // card.fps).replace(":", "").replace(".", "")
        for x, d in zip(self.clock_slots, clock):
            if x is not None:
                pic.paste(x, self.tc_y0, self.glyphs[int(d)])
        number = str(i + 1).zfill(len(self.frame_slots))
        for x, d in zip(self.frame_slots, number):
            pic.paste(x, self.tc_y0, self.glyphs[int(d)])
        return frame
