"""Make the small media files the examples use, deterministically.

    python examples/media/make_media.py

Everything here is made by the project itself (tones and title cards), so the examples carry
no third-party media. The outputs are committed; rerun this after changing it.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Run from a checkout without installing.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wanflow import media

HERE = Path(__file__).resolve().parent

# name -> how to make it. Audio is 8 kHz mono WAV to keep the files small; the API takes
# WAV/MP3 of 3–30 s for driving audio, so the driving tone is 4 s.
TONES = {
    "cat-verse.wav": {"seconds": 4.0, "freq": 330.0},   # the cat general's custom audio (audio_url)
    "score.wav": {"seconds": 4.0, "freq": 220.0},       # the film's score, laid under a scene
    "mira-voice.wav": {"seconds": 4.0, "freq": 262.0},  # Mira's voice, a Wan 3.0 reference audio
}
CARDS = {  # stills at least 360 px per side (the API's minimum for wan2.6 and older)
    "harbor-dawn.png": ("Harbor at dawn: the boat is moored, gulls over the water", 640, 360),
    "mira-sheet.png": (("Character sheet - Mira, lighthouse keeper: yellow oilskin, grey braid, "
                        "round glasses; front, side and back views"), 640, 360),
}


def main() -> None:
    for name, spec in TONES.items():
        media.write_tone(HERE / name, spec["seconds"], freq=spec["freq"], rate=8000, fmt="wav",
                         channels=1)
    for name, (text, width, height) in CARDS.items():
        media.write_card_image(HERE / name, text, width, height)
    for name in list(TONES) + list(CARDS):
        print(f"{name}: {(HERE / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
