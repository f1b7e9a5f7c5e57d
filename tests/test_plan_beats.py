"""Timestamped prompts split into beats, in the forms the Wan guide writes them."""
from wanflow.plan import beats
from wanflow.plan.beats import Beat


def test_bracketed_timestamps_with_and_without_shot_numbers():
    preamble, found = beats.split(
        "A vision of harmony. Shot 1 [0-2s]: Wide shot of a garden. Shot 2 [2-4s]: A robot "
        "gardener. [4-7.5s] Sunlight streams in.")
    assert preamble == "A vision of harmony."
    assert found == (Beat(0, 2, "Wide shot of a garden."), Beat(2, 4, "A robot gardener."),
                     Beat(4, 7.5, "Sunlight streams in."))


def test_a_prompt_without_timestamps_is_one_piece():
    assert beats.split("  A cat naps in the sun.  ") == ("A cat naps in the sun.", ())
    assert beats.split("[5-2s] runs backwards") == ("[5-2s] runs backwards", ())
