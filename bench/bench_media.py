"""Benchmark of wanflow.media: preview rendering speed and assembly throughput.

Run from the repository root:  python bench/bench_media.py

Figures are "seconds of video per wall-clock second" (higher is better). Each figure is the
best of a few runs after a warm-up, so that a busy machine disturbs it less. Encoding is
single-threaded (libx264 threads=1) in both the preview and the assembly.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wanflow import media

PROMPT = ("A lighthouse keeper climbs the spiral stairs at dusk, lantern in hand, the sea "
          "crashing against the rocks below; slow upward tracking shot, warm light, film grain.")
RESOLUTIONS = [("480P", 832, 480), ("720P", 1280, 720), ("1080P", 1920, 1080)]
SECONDS = 5.0
FPS = 30


def best_of(runs, fn, cpu=False):
    """Best wall time of `runs` calls (or best process CPU time when cpu=True)."""
    clock = time.process_time if cpu else time.perf_counter
    times = []
    for _ in range(runs):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times)


def card(width, height, take=1, seconds=SECONDS):
    return media.PreviewCard(scene="01", shot="A", take=take, prompt=PROMPT, duration=seconds,
                             width=width, height=height, fps=FPS, model="wan2.2-t2v-plus")


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wanflow-bench-") as d:
        tone = os.path.join(d, "tone.wav")
        media.write_tone(tone, 20.0, freq=440.0)
        print(f"Preview rendering, {SECONDS:g} s clip at {FPS} fps with audio, single thread")
        print("(x realtime = seconds of video per second; 'cpu' uses process CPU time, which a "
              "busy machine disturbs less)")
        print(f"{'size':<8}{'pixels':>12}{'wall s':>10}{'x realtime':>12}{'x rt (cpu)':>12}"
              f"{'MB':>8}")
        for name, w, h in RESOLUTIONS:
            dest = os.path.join(d, f"preview_{name}.mp4")
            media.render_preview(card(w, h), dest, audio=tone)       # warm-up
            def run(w=w, h=h, dest=dest):
                media.render_preview(card(w, h), dest, audio=tone)
            wall = best_of(3, run)
            cpu = best_of(2, run, cpu=True)
            size = os.path.getsize(dest) / 1e6
            print(f"{name:<8}{f'{w}x{h}':>12}{wall:>10.3f}{SECONDS / wall:>12.1f}"
                  f"{SECONDS / cpu:>12.1f}{size:>8.2f}")

        print()
        clips = []
        for i in range(3):
            path = os.path.join(d, f"clip{i}.mp4")
            media.render_preview(card(1280, 720, take=i + 1), path, audio=tone)
            clips.append(path)
        total = 3 * SECONDS
        out = os.path.join(d, "joined.mp4")
        kw = {"width": 1280, "height": 720, "fps": FPS}
        copy_wall = best_of(3, lambda: media.assemble(clips, out, **kw))
        copied = media.assemble(clips, out, **kw)
        enc_wall = best_of(2, lambda: media.assemble(clips, out, force_reencode=True, **kw))
        encoded = media.assemble(clips, out, force_reencode=True, **kw)
        xfade_wall = best_of(1, lambda: media.assemble(
            clips, out, transitions=("crossfade", 0.5), **kw))
        print(f"Assembly of 3 x {SECONDS:g} s 720P clips ({total:g} s), cuts")
        print(f"{'mode':<26}{'wall s':>10}{'out s / wall s':>16}")
        print(f"{'stream copy':<26}{copy_wall:>10.3f}{copied.duration / copy_wall:>16.1f}"
              f"   reencoded={copied.reencoded}")
        print(f"{'re-encode (forced)':<26}{enc_wall:>10.3f}{encoded.duration / enc_wall:>16.1f}"
              f"   reencoded={encoded.reencoded}")
        print(f"{'re-encode, 0.5 s xfades':<26}{xfade_wall:>10.3f}"
              f"{(total - 1.0) / xfade_wall:>16.1f}")
        print(f"stream copy is {enc_wall / copy_wall:.0f}x faster than re-encoding")

        print()
        long_clip = os.path.join(d, "long1080.mp4")
        media.render_preview(card(1920, 1080, seconds=15.0), long_clip, audio=tone)
        media.probe(long_clip)
        probe_wall = best_of(3, lambda: media.probe(long_clip))
        print(f"probe of a 15 s 1080P clip (full validation): {probe_wall * 1000:.0f} ms")
    print(f"\nbench finished in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
