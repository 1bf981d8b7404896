"""Server-sent events of an OpenAI-compatible completion stream, decoded from bytes. Pure.

:class:`SSEDecoder` is fed the chunks of a response body as the socket delivered them and
says how many text-carrying events each completed (compare httpx's ``_decoders.py``). A
chunk of whole ``data:`` events takes the fast path, which counts text keys instead of
parsing JSON; anything else (a split event, a comment, another field, CRLF) goes line by
line. Every ``verify_every``-th chunk is parsed in full to check the fast path.

JSON is parsed with orjson when installed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson comes with prefect
    _loads = json.loads


@dataclass(slots=True)
class StreamState:
    """What one response's events said so far."""

    text_parts: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    error: str | None = None
    done: bool = False
    pending: bytes = b""
    """The unfinished last line of the chunks fed so far."""


class SSEDecoder:
    """Counts text-carrying events in the chunks of completion streams.

    One per client: which fast-path reads get verified, and whether the fast path is
    still trusted, span all the client's responses; each response has its own
    :class:`StreamState`.
    """

    def __init__(self, *, chat: bool, keep_text: bool, verify_every: int) -> None:
        self._chat = chat
        self._keep_text = keep_text
        """The text itself is needed (to count tokens), so every chunk is parsed."""
        self._verify_every = verify_every
        # Text-carrying events are counted by key on the fast path (see count_read);
        # every verify_every-th read is also fully parsed to check it.
        key = b'"content":' if chat else b'"text":'
        self._compact_key, self._compact_empty = key + b'"', key + b'""'
        self._reads = 0
        self.fast_path_disabled: str | None = None
        """Why every read is parsed in full from now on; None while the fast path holds."""

    def feed(self, data: bytes, state: StreamState) -> int:
        """Text-carrying events completed by the chunk ``data``; an unfinished last line
        waits in ``state`` for the next chunk."""
        if state.pending:
            data = state.pending + data
            state.pending = b""
        texts = self.scan_read(data, state) if not state.done else -1
        if texts < 0:
            lines = data.split(b"\n")
            state.pending = lines.pop()
            texts = self.handle_lines(lines, state)
        return texts

    def flush(self, state: StreamState) -> int:
        """At the end of the body: the text events of a last line with no newline."""
        pending, state.pending = state.pending, b""
        return self.handle_lines([pending], state) if pending else 0

    def scan_read(self, data: bytes, state: StreamState) -> int:
        """Text-carrying events in a read of whole ``data:`` events; -1 for another shape
        (a partial event, a first line that is not data), which the line-by-line path
        handles. The first and every ``verify_every``-th read are parsed in full and
        check the fast path (:meth:`count_read`); on any disagreement or bad JSON the
        decoder parses every read from then on and records why."""
        if not data.startswith(b"data:") or not data.endswith(b"\n\n"):
            return -1
        reads = self._reads = self._reads + 1
        if (
            reads == 1
            or reads % self._verify_every == 0
            or self.fast_path_disabled is not None
            or self._keep_text
        ):
            return self.parse_read(data, state)
        return self.count_read(data, state)

    def count_read(self, data: bytes, state: StreamState) -> int:
        """The fast path: -1 unless the read is text events, then a few others.

        Inside JSON every quote in a string is escaped, so ``"text":"`` can only be a
        ``text`` key written compactly (vLLM, llama.cpp, TGI and SGLang all write it so)
        with a string value, and ``"text":""`` one with an empty value. The events after
        the last such key (usage, a finish event, [DONE]) are few and parsed one by one.
        The events before it are counted, not parsed: a ``data:`` event is two newlines,
        so when the newlines there are exactly twice the keys, every one of those events
        is a text event. Anything else among them (an error event, a key written another
        way, a comment, another field, a [DONE] in the middle) breaks the equality and
        the line path reads the read exactly.

        Each count is one pass over the read in C, and those passes, not the Python
        around them, are the fast path's cost: three here (the newline count is the
        cheapest kind, a single byte). What counting cannot see is an event with two
        text keys (``n`` > 1 choices, never asked for) next to an event with none;
        verified reads catch that.
        """
        key = self._compact_key
        keys = data.count(key)
        tail_at = 0
        if keys:
            last_key = data.rfind(key)
            tail_at = data.find(b"\n\n", last_key) + 2
            if tail_at == 1 or data.count(b"\n", 0, tail_at) != 2 * keys:
                return -1
            # Usage rides on the last text event on some servers (llama.cpp) and on
            # every event with vLLM's continuous usage stats: the last one is the total.
            last_event = data.rfind(b"\n\ndata:", 0, last_key)
            last_event = 0 if last_event < 0 else last_event + 2
            if data.find(b'"usage"', last_event, tail_at) >= 0:
                try:
                    usage = _loads(data[last_event + 5 : tail_at - 2]).get("usage")
                except (ValueError, AttributeError):
                    return -1  # the line path names the bad event
                if usage:
                    state.usage = usage
        done = False
        if tail_at < len(data):
            tail = self._read_tail(data[tail_at:-2], state)
            if tail is None:
                return -1
            done = tail
        state.done = done
        return keys - data.count(self._compact_empty, 0, tail_at) if keys else 0

    def _read_tail(self, tail: bytes, state: StreamState) -> bool | None:
        """Parse the events after the last text event; whether the last is [DONE].
        None for what the line path must decide: a comment or other field, an event
        after [DONE], bad JSON, or text written in a form the count did not see."""
        done = False
        for part in tail.split(b"\n\n"):
            if done or not part.startswith(b"data:"):
                return None
            payload = part[5:].strip()
            if payload == b"[DONE]":
                done = True
                continue
            try:
                event = _loads(payload)
            except ValueError:
                return None
            if type(event) is not dict:
                return None
            if (choices := event.get("choices")) and type(choice := choices[0]) is dict:
                if self._chat:
                    delta = choice.get("delta")
                    if type(delta) is dict and delta.get("content"):
                        return None
                elif choice.get("text"):
                    return None
            if usage := event.get("usage"):
                state.usage = usage
            if "error" in event:
                state.error = f"error event: {str(event['error'])[:300]}"
        return done

    def parse_read(self, data: bytes, state: StreamState) -> int:
        """Full parse of a read of whole ``data:`` events, checking the fast path."""
        parts = data[5:-2].split(b"\n\ndata:")
        done = parts[-1].strip() == b"[DONE]"
        if done:
            parts.pop()
        try:
            events = _loads(b"[" + b",".join(parts) + b"]") if parts else []
        except ValueError:
            # A line that is not data (a comment, another field) or a [DONE] before the
            # end lands inside a part and fails the parse too: that is a shape for the
            # line path, not bad JSON.
            if only_data_events(data) and not any(p.strip() == b"[DONE]" for p in parts):
                self._disable_fast_path("an event was not valid JSON")
            return self.handle_lines(data.split(b"\n"), state)  # names the bad event
        usage_before, error_before = state.usage, state.error
        texts = self._scan_events(events, data, state)
        state.done = done
        if self.fast_path_disabled is None:
            counted = StreamState()
            fast = self.count_read(data, counted)
            usage = state.usage if state.usage is not usage_before else None
            error = state.error if state.error is not error_before else None
            if fast >= 0 and (
                fast != texts
                or counted.done != done
                or counted.usage != usage
                or (counted.error is None) != (error is None)
            ):
                self._disable_fast_path("the fast path disagreed with full parsing")
        return texts

    def _disable_fast_path(self, why: str) -> None:
        if self.fast_path_disabled is None:
            self.fast_path_disabled = why

    def handle_lines(self, lines: list[bytes], state: StreamState) -> int:
        """Process the SSE lines of one read; returns how many events carried text.

        All events of a read are parsed with one JSON call and scanned with comprehensions:
        at high request rates the per-event Python overhead, not the parsing, is what would
        make the client the bottleneck.
        """
        if state.done:
            return 0
        payloads = [line[5:] for line in lines if line.startswith(b"data:")]
        if not payloads:
            return 0
        if payloads[-1].strip() == b"[DONE]":
            payloads.pop()
            state.done = True
            if not payloads:
                return 0
        joined = b"[" + b",".join(payloads) + b"]"
        try:
            events = _loads(joined)
        except ValueError:
            events = _parse_one_by_one(payloads, state)
        return self._scan_events(events, joined, state)

    def _scan_events(self, events: list[Any], raw: bytes, state: StreamState) -> int:
        """Count text-carrying events; keep usage, errors and (if needed) the text."""
        if self._chat:
            texts = [
                t
                for e in events
                if type(e) is dict
                and (c := e.get("choices"))
                and type(d := c[0].get("delta")) is dict
                and (t := d.get("content"))
            ]
        else:
            texts = [
                t
                for e in events
                if type(e) is dict and (c := e.get("choices")) and (t := c[0].get("text"))
            ]
        if self._keep_text:
            state.text_parts.extend(str(t) for t in texts)
        # Substring checks first: most events carry neither, and the scan is per event.
        if b'"usage"' in raw:
            for event in events:
                if type(event) is dict and event.get("usage"):
                    state.usage = event["usage"]
        if b'"error"' in raw:
            for event in events:
                if type(event) is dict and "error" in event:
                    state.error = f"error event: {str(event['error'])[:300]}"
        return len(texts)


def _parse_one_by_one(payloads: list[bytes], state: StreamState) -> list[Any]:
    """Slow path for a read holding a bad event or a [DONE] before its end."""
    events = []
    for payload in payloads:
        if state.done:
            break
        if payload.strip() == b"[DONE]":
            state.done = True
            continue
        try:
            events.append(_loads(payload))
        except ValueError:
            state.error = f"unparseable SSE data: {payload[:200]!r}"
    return events


def only_data_events(data: bytes) -> bool:
    """Whether ``data`` is nothing but whole ``data: ...`` lines, each followed by a blank
    line (what vLLM, TGI and SGLang send): no comments, other fields or CRLF pairs. JSON
    has no raw newlines, so ``\n\ndata:`` can only be an event boundary."""
    # A CR before the blank line ("\r\n\n") is harmless: JSON and [DONE] are stripped.
    return (
        data.startswith(b"data:")
        and data.endswith(b"\n\n")
        and data.count(b"\n") == 2 * data.count(b"\n\ndata:") + 2
    )
