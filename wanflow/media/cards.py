"""Painting preview cards: the frames of an animatic that shows a shot's id, timing and prompt.

A card shows what the shot is asked to do: the prompt (a timestamped prompt beat by beat,
the current beat large with its time range), the input images (a first frame held at the
start, a last frame held at the end, references as thumbnails) and where the clip falls in
its scene and film. The layout is drawn once per beat with Pillow and converted to YUV; each
frame then only copies that picture and paints the moving parts (progress bar, bouncing
block, timecode digits from pre-rendered glyphs) straight into the encoder's frame buffers.
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
    beats: tuple[tuple[float, float, str], ...] = ()   # (start s, end s, text) of the prompt
    scene_start: float | None = None    # where the clip starts in its scene (seconds)
    film_start: float | None = None     # ... and in its film
    first_image: str | None = None      # held at the start, as the model starts on it
    last_image: str | None = None       # held at the end, as the model lands on it
    references: tuple[str, ...] = ()    # reference images, shown as thumbnails


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
    """Static layout drawn once per beat with Pillow; moving parts painted per frame in YUV."""

    def __init__(self, card: PreviewCard, n_frames: int):
        w, h = card.width, card.height
        self.card, self.n = card, n_frames
        self.c_accent = color_yuv(_ACCENT)
        self.c_block = color_yuv(_BLOCK)
        self.clock_slots: list[int | None] = []
        self.frame_slots: list[int] = []
        self.cue_slots: list[tuple[list[int | None], float]] = []   # (slots, offset seconds)
        self.glyphs: list[YuvPicture] = []
        self.tc_y0 = self.cue_y0 = 0
        self.bases: list[YuvPicture] = []
        self.beat_of_frame: list[int] = [0] * n_frames
        self.stills: dict[int, YuvPicture] = {}    # frame index -> input image shown whole
        u = min(w, h)
        if u < 64:
            self._tiny(w, h)
            return
        m = max(8, even(u * 0.05))
        self.m = m
        img = Image.new("RGB", (w, h), _BG)
        draw = ImageDraw.Draw(img)

        # Bottom panel: moving-block lane, timecode lines, progress bar.
        f_tc = _font(max(10, u // 20))
        tc_h = _line_height(f_tc) + 2
        bar_h = max(4, even(u / 70))
        lane_h = max(6, even(u / 30))
        gap = max(4, even(u / 60))
        cue = card.scene_start is not None or card.film_start is not None
        bar_y1 = h - m
        bar_y0 = bar_y1 - bar_h
        cue_y0 = bar_y0 - gap - tc_h
        tc_y1 = cue_y0 - even_down(gap // 2) if cue else bar_y0 - gap
        tc_y0 = tc_y1 - tc_h
        lane_y1 = tc_y0 - gap
        lane_y0 = lane_y1 - lane_h
        panel_y0 = max(0, even_down(lane_y0 - gap))
        draw.rectangle((0, panel_y0, w - 1, h - 1), fill=_PANEL)
        x0, x1 = m, w - m
        self.track = (x0, x1)
        draw.rectangle((x0, bar_y0, x1 - 1, bar_y1 - 1), fill=_TRACK)
        draw.rectangle((x0, lane_y0, x1 - 1, lane_y1 - 1), fill=_BG)
        for start, _, _ in card.beats[1:]:   # where each beat begins, on the bar
            bx = x0 + even_down((x1 - x0) * min(1.0, start / card.duration))
            draw.rectangle((bx, bar_y0 - gap // 2, bx + 1, bar_y1 - 1), fill=_DIM)
        self.bar = (bar_y0, bar_y1)
        self.lane = (lane_y0, lane_y1)
        self.block_w = max(8, even(w / 12))

        # Timecodes: dynamic digits are glyph patches at even x; the rest is static.
        cell = even(max(f_tc.getlength(d) for d in "0123456789") + 1)
        for d in "0123456789":
            g = Image.new("RGB", (cell, tc_h), _PANEL)
            ImageDraw.Draw(g).text((0, 0), d, font=f_tc, fill=_TEXT)
            self.glyphs.append(YuvPicture.from_rgb(np.asarray(g)))
        _, x = self._layout(draw, f_tc, m, tc_y0, "shot ", cell, _DIM)
        slots, x = self._layout(draw, f_tc, x, tc_y0, "##:##.##", cell, _TEXT)
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
        if cue:
            x = m
            for name, offset in (("scene", card.scene_start), ("film", card.film_start)):
                if offset is None:
                    continue
                _, x = self._layout(draw, f_tc, x, cue_y0, f"{name} ", cell, _DIM)
                slots, x = self._layout(draw, f_tc, x, cue_y0, "##:##.##", cell, _TEXT)
                self.cue_slots.append(([sx if sx + cell <= w else None for sx in slots],
                                       offset))
                x += 2 * cell
            self.cue_y0 = cue_y0

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

        # The input images as thumbnails in a column on the right of the body.
        text_x1 = w - m
        thumbs = [("first frame", card.first_image)] if card.first_image else []
        thumbs += [(f"reference {i}", path) for i, path in enumerate(card.references, 1)]
        thumbs += [("last frame", card.last_image)] if card.last_image else []
        if thumbs and panel_y0 - gap - y > 4 * gap:
            text_x1 = self._thumbnails(draw, img, thumbs, f_info, w - m, y, panel_y0 - gap,
                                       even(w * 0.24), gap)
        body = (m, y, text_x1, panel_y0 - gap)

        # The prompt: whole, or the current beat large under the text before the beats.
        if not card.beats:
            self._prompt(draw, card.prompt, _font(max(9, u // 24)), body)
            self.bases = [YuvPicture.from_rgb(np.asarray(img))]
        else:
            for i, beat in enumerate(card.beats):
                page = img.copy()
                self._beat(ImageDraw.Draw(page), i, beat, body, u)
                self.bases.append(YuvPicture.from_rgb(np.asarray(page)))
            for k in range(n_frames):
                self.beat_of_frame[k] = _beat_at(card.beats, k / card.fps)
        self._stills(card, n_frames, f_info)

    def _thumbnails(self, draw, img, thumbs, font, right, top, bottom, width, gap) -> int:
        """Input images stacked in a column ending at `right`; returns the column's left."""
        left = right - width
        caption = _line_height(font)
        each = max(caption * 2, (bottom - top) // len(thumbs))
        y = top
        for name, path in thumbs:
            if y + caption * 2 > bottom:
                break
            box_h = min(each, bottom - y) - caption - gap // 2
            picture = _fitted(path, width, box_h)
            if picture is not None:
                img.paste(picture, (left + (width - picture.width) // 2, y))
                draw.rectangle((left, y, right - 1, y + box_h - 1), outline=_TRACK)
            draw.text((left, y + box_h + 1), _ellipsize(name, font, width), font=font,
                      fill=_DIM)
            y += box_h + caption + gap
        return left - gap

    @staticmethod
    def _prompt(draw, text, font, box) -> None:
        """Word-wrapped into `box`, ellipsized where it does not fit."""
        x0, y, x1, y1 = box
        ph = int(_line_height(font) * 1.15)
        lines = _wrap(text, font, x1 - x0)
        fit = max(0, (y1 - y) // ph) if ph else 0
        if len(lines) > fit:
            lines = lines[:fit]
            if lines:
                lines[-1] = _ellipsize(lines[-1] + " …", font, x1 - x0)
        for line in lines:
            draw.text((x0, y), line, font=font, fill=_TEXT)
            y += ph

    def _beat(self, draw, index, beat, box, u) -> None:
        """Beat `index` of the card: its number and time range, then its text, large."""
        x0, y, x1, y1 = box
        start, end, text = beat
        if self.card.prompt:   # the text before the beats: what holds for all of them
            f_lead = _font(max(9, u // 28))
            lead = _wrap(self.card.prompt, f_lead, x1 - x0)[:2]
            for line in lead:
                draw.text((x0, y), line, font=f_lead, fill=_DIM)
                y += _line_height(f_lead)
            y += max(2, u // 90)
        f_span = _font(max(10, u // 20))
        span = f"beat {index + 1}/{len(self.card.beats)}   [{start:g}-{end:g}s]"
        draw.text((x0, y), _ellipsize(span, f_span, x1 - x0), font=f_span, fill=_ACCENT)
        y += _line_height(f_span) + max(2, u // 90)
        self._prompt(draw, text, _font(max(10, u // 15)), (x0, y, x1, y1))

    def _stills(self, card: PreviewCard, n_frames: int, font) -> None:
        """The first and last frame images, whole, held at the start and at the end: the
        model starts on the first and lands on the last, and so does the animatic."""
        if n_frames < 2:
            return
        hold = min(max(1, round(card.fps)), max(1, n_frames // 4))
        for path, frames, caption in ((card.first_image, range(hold), "first frame"),
                                      (card.last_image, range(n_frames - hold, n_frames),
                                       "last frame")):
            if not path:
                continue
            picture = _still(path, card, caption, font)
            if picture is not None:
                for k in frames:
                    self.stills[k] = picture

    def _tiny(self, w, h):
        """Under 64 px no text is legible: an accent frame, the moving block and the bar."""
        img = Image.new("RGB", (w, h), _BG)
        ImageDraw.Draw(img).rectangle((0, 0, w - 1, h - 1), outline=_ACCENT, width=2)
        self.track = (2, w - 2)
        self.bar = (h - 4, h - 2)
        lane_h = max(2, even_down(h / 4))
        self.lane = (h - 6 - lane_h, h - 6)
        self.block_w = max(2, even(w / 8))
        self.bases = [YuvPicture.from_rgb(np.asarray(img))]

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
        card = self.card
        still = self.stills.get(i)
        base = still if still is not None else self.bases[self.beat_of_frame[i]]
        frame = av.VideoFrame(base.w, base.h, "yuv420p")
        pic = YuvPicture.on_frame(frame)
        np.copyto(pic.Y, base.Y)
        np.copyto(pic.U, base.U)
        np.copyto(pic.V, base.V)
        if still is not None:
            return frame
        x0, x1 = self.track
        span = x1 - x0
        fill = even_down(span * (i + 1) / self.n)
        pic.fill(x0, self.bar[0], x0 + fill, self.bar[1], self.c_accent)
        period = max(2, 2 * card.fps)
        phase = (i % period) / period
        tri = 1.0 - abs(2.0 * phase - 1.0)
        bx = x0 + even_down(tri * (span - self.block_w))
        pic.fill(bx, self.lane[0], bx + self.block_w, self.lane[1], self.c_block)
        centis = i * 100 // card.fps
        self._digits(pic, self.clock_slots, self.tc_y0, _clock(centis))
        for slots, offset in self.cue_slots:
            self._digits(pic, slots, self.cue_y0, _clock(round(offset * 100) + centis))
        number = str(i + 1).zfill(len(self.frame_slots))
        for x, d in zip(self.frame_slots, number, strict=False):
            pic.paste(x, self.tc_y0, self.glyphs[int(d)])
        return frame

    def _digits(self, pic: YuvPicture, slots, y: int, clock: str) -> None:
        for x, d in zip(slots, clock.replace(":", "").replace(".", ""), strict=False):
            if x is not None:
                pic.paste(x, y, self.glyphs[int(d)])


def _beat_at(beats, seconds: float) -> int:
    """Index of the beat on screen at `seconds`: the last one started (the first before)."""
    current = 0
    for i, (start, _, _) in enumerate(beats):
        if start <= seconds + 1e-9:
            current = i
    return current


def _open_rgb(path: str):
    """An input image as RGB, or None when it cannot be read (the card shows its name)."""
    try:
        with Image.open(path) as source:
            return source.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _fitted(path: str, width: int, height: int):
    """The image at `path` scaled to fit inside width x height, aspect kept."""
    picture = _open_rgb(path)
    if picture is None or width < 2 or height < 2:
        return None
    scale = min(width / picture.width, height / picture.height)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.Resampling.LANCZOS)


def _still(path: str, card: PreviewCard, caption: str, font) -> YuvPicture | None:
    """An input image fitted to the frame on the background, still labelled as a preview."""
    w, h = card.width, card.height
    picture = _fitted(path, w, h)
    if picture is None:
        return None
    img = Image.new("RGB", (w, h), _BG)
    img.paste(picture, ((w - picture.width) // 2, (h - picture.height) // 2))
    draw = ImageDraw.Draw(img)
    m = max(4, even(min(w, h) * 0.03))
    text = f"{card.label or 'PREVIEW'} · {caption}"
    tw, th = font.getlength(text), _line_height(font)
    draw.rectangle((m, m, m + tw + m, m + th + m // 2), fill=_ACCENT)
    draw.text((m + m // 2, m + m // 4), text, font=font, fill=(0, 0, 0))
    return YuvPicture.from_rgb(np.asarray(img))
