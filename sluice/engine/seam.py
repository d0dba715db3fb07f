"""Where a continuation meets the text already delivered: what of the new attempt's text to drop at the seam.

The delivered text is final (the user has seen it); the continuing attempt's text is held back at its start only as
long as it could still be a repeat of what was delivered, then released without the repeat. Rules (docs/providers.md,
"Continuation"):

- Whitespace: when the delivered text ends with whitespace, the continuation's leading whitespace is dropped (a
  prefill is sent without its trailing whitespace, which Anthropic refuses, so the model writes it again).
- A full repeat — the continuation starts with the whole delivered text (a server that ignored the prefill, or a
  model that started over) — is dropped, whichever the method.
- A tail repeat, with the `instruction` method only (a model asked to go on often restates the last words): the
  continuation starts with the last `k` characters of the delivered text, `k >= MIN_OVERLAP`, and those begin at a
  word boundary of the delivered text (so "Par" + "Paris." gives "Paris.", but a continuation that happens to begin
  with the same letters as the end of a word is kept). With `prefill` the provider continues the exact text, so
  anything it writes is new and kept.

No I/O: `feed` each piece of the continuation, `close` at its end; each returns the text to deliver now.
"""

from __future__ import annotations

MIN_OVERLAP = 3  # characters of a tail repeat, below which a coincidence is likelier than a repeat
PREFILL = "prefill"
INSTRUCTION = "instruction"


class Seam:
    def __init__(self, delivered: str, method: str) -> None:
        self.delivered = delivered
        self.tails = method == INSTRUCTION  # whether a repeated tail is looked for (a full repeat always is)
        self._strip_space = delivered[-1:].isspace()
        self._held = ""
        self._open = bool(delivered)  # still deciding; once decided, text passes through
        self.dropped = 0  # characters of the continuation dropped at the seam (a repeat, whitespace)

    def feed(self, text: str) -> str:
        if not self._open:
            return text
        held = self._held + text
        if self._strip_space:
            stripped = held.lstrip()
            self.dropped += len(held) - len(stripped)
            held = stripped
            if not held:
                self._held = ""
                return ""
            self._strip_space = False
        if self._could_still_repeat(held):
            self._held = held
            return ""
        return self._decide(held)

    def close(self) -> str:
        """The text still held back when the continuation ended."""
        if not self._open:
            return ""
        held, self._held = self._held, ""
        return self._decide(held) if held else ""

    def _could_still_repeat(self, held: str) -> bool:
        """Whether more text could make `held` a repeat: it stands somewhere in the delivered text short of its end
        (from its start only, when tails are not looked for)."""
        delivered = self.delivered
        if not self.tails:
            return len(held) < len(delivered) and delivered.startswith(held)
        start = delivered.find(held)
        while start != -1:
            if start + len(held) < len(delivered) and self._allowed(start):
                return True
            start = delivered.find(held, start + 1)
        return False

    def _decide(self, held: str) -> str:
        self._open, self._held = False, ""
        overlap = self._overlap(held)
        self.dropped += overlap
        return held[overlap:]

    def _overlap(self, held: str) -> int:
        """Characters at the start of `held` that repeat the end of the delivered text (0: none)."""
        delivered = self.delivered
        if held.startswith(delivered):
            return len(delivered)
        if not self.tails:
            return 0
        for size in range(min(len(held), len(delivered) - 1), MIN_OVERLAP - 1, -1):
            start = len(delivered) - size
            if self._allowed(start) and delivered.endswith(held[:size]):
                return size
        return 0

    def _allowed(self, start: int) -> bool:
        """A repeat may begin at `start` of the delivered text: its start, or a word boundary."""
        if start == 0:
            return True
        before, first = self.delivered[start - 1], self.delivered[start]
        return not (before.isalnum() and first.isalnum())
