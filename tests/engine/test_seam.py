"""The seam between delivered text and its continuation (sluice.engine.seam): examples, then properties over random
texts, cut points, piece boundaries and repeats."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from sluice.engine.seam import INSTRUCTION, PREFILL, Seam

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]


def splice(delivered: str, pieces: list[str], method: str) -> str:
    seam = Seam(delivered, method)
    return delivered + "".join(seam.feed(piece) for piece in pieces) + seam.close()


def test_a_prefill_continuation_is_kept_whole() -> None:
    assert splice("Hello wo", ["rld", "!"], PREFILL) == "Hello world!"


def test_with_a_prefill_only_a_full_repeat_is_dropped() -> None:
    assert splice("Hello wo", ["Hel", "lo world!"], PREFILL) == "Hello world!"
    # A prefill is continued exactly, so text that merely resembles the end of the delivered text is new text.
    assert splice("I said no", [" no", " more"], PREFILL) == "I said no no more"


def test_an_instruction_continuation_loses_a_restated_tail() -> None:
    assert splice("The capital of France is Par", ["Paris."], INSTRUCTION) == "The capital of France is Paris."
    assert splice("The capital of France is Par", ["is Paris."], INSTRUCTION) == "The capital of France is Paris."
    assert splice("The capital of France is", [" Paris."], INSTRUCTION) == "The capital of France is Paris."


def test_a_tail_repeat_must_start_at_a_word_boundary_and_be_long_enough() -> None:
    # "ing" repeats the end of "sing" but not from a word's start: a coincidence, kept.
    assert splice("They sing", ["ing along"], INSTRUCTION) == "They singing along"
    # Two characters are too few to call a repeat.
    assert splice("go to", ["to bed"], INSTRUCTION) == "go toto bed"


def test_whitespace_is_not_doubled_at_the_seam() -> None:
    assert splice("Hello ", ["  ", " world"], PREFILL) == "Hello world"
    assert splice("Line one.\n\n", ["\n\nLine two."], INSTRUCTION) == "Line one.\n\nLine two."


def test_json_cut_inside_a_string_restated_from_its_quote() -> None:
    assert splice('{"reply": "Hel', ['"Hello", "n": 1}'], INSTRUCTION) == '{"reply": "Hello", "n": 1}'


def test_text_is_held_only_while_it_could_still_be_a_repeat() -> None:
    seam = Seam("The capital of France is Par", INSTRUCTION)
    assert seam.feed("P") == "" and seam.feed("ar") == ""  # could be restating "Par"…
    assert seam.feed("is.") == "is."  # …it was: dropped, the rest flows
    assert seam.feed(" More") == " More" and seam.close() == ""
    fresh = Seam("Hello", INSTRUCTION)
    assert fresh.feed(" there") == " there"  # not in the delivered text at all: not held


def test_held_text_comes_out_when_the_continuation_ends() -> None:
    seam = Seam("one two three", INSTRUCTION)
    assert seam.feed("tw") == ""  # "tw" stands inside the delivered text
    assert seam.close() == "tw"


def test_nothing_delivered_means_no_seam() -> None:
    assert splice("", ["Hello"], INSTRUCTION) == "Hello"


@st.composite
def answers(draw: st.DrawFn) -> tuple[str, int]:
    """An answer of distinct words (so no phrase of it repeats by chance) and a cut point inside it."""
    words = draw(st.lists(st.sampled_from(WORDS), min_size=2, max_size=len(WORDS), unique=True))
    text = " ".join(words) + "."
    cut = draw(st.integers(min_value=1, max_value=len(text) - 1))
    return text, cut


def pieces_of(draw: st.DrawFn, text: str) -> list[str]:
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=max(len(text) - 1, 1)), max_size=6)))
    edges = [0, *[b for b in bounds if b < len(text)], len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges) if b > a]


@given(st.data(), answers())
def test_prefill_splices_the_exact_rest_of_the_answer(data: st.DataObject, answer: tuple[str, int]) -> None:
    text, cut = answer
    delivered, rest = text[:cut], text[cut:]
    if delivered[-1].isspace():  # the provider continues the prefill without its trailing whitespace
        rest = " " + rest
    assert splice(delivered, pieces_of(data.draw, rest), PREFILL) == text


@given(st.data(), answers(), st.booleans())
def test_instruction_splices_exactly_whether_or_not_the_model_restates_the_last_word(
    data: st.DataObject, answer: tuple[str, int], restates: bool
) -> None:
    text, cut = answer
    delivered = text[:cut]
    start = cut
    if restates:  # the model begins again at the start of the word it was cut in (or the last whole word)
        start = delivered.rstrip().rfind(" ") + 1
        if cut - start < 3:
            start = cut
    assert splice(delivered, pieces_of(data.draw, text[start:]), INSTRUCTION) == text
