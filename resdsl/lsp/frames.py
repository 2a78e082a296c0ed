"""A bound on what the language server reads from its client (issue 23).

pygls reads a frame's body with `stdin.read(Content-Length)` and its header lines with
`readline()`, both unbounded: a header claiming 99,999,999,999 bytes made the server allocate
that (MemoryError, and it exited), and a Content-Length of 5,000 digits makes `int()` raise.
pygls has no hook for a limit, but it reads whatever `start_io(stdin=...)` gives it, so the
server's input is wrapped here (:class:`BoundedInput`) rather than pygls's read loop copied:

- a header line longer than :data:`MAX_HEADER_LINE` is dropped in pieces (LSP's headers are
  `Content-Length` and `Content-Type`, a few dozen bytes);
- a frame over :data:`MAX_FRAME` is answered with a JSON-RPC error (Invalid Request, id null:
  its id is in the body, which is never read) and its body is then read and dropped in pieces,
  so the stream stays in step with a client that does send that much.

pygls must still be handed a frame for each header it has read: the refused one reaches it as
a notification, :data:`REFUSED`, whose handler (:func:`install`) sends the error, from the
server's own thread like every other answer.
"""

from __future__ import annotations

import json
import re

# 16 times the largest spec the compiler reads (1 MiB), with room for JSON's escapes.
MAX_FRAME = 16 * 2**20
MAX_HEADER_LINE = 1024
REFUSED = "$/resdsl/refusedFrame"
_LENGTH = re.compile(rb"Content-Length: (\d+)\r\n")  # pygls's own pattern
_DROP = 2**16


class BoundedInput:
    """A binary stream (the server's stdin) that never hands pygls more than the limits."""

    def __init__(self, stream, limit: int = MAX_FRAME):
        self._stream, self._limit = stream, limit
        self._length_read = False  # pygls takes a frame's first Content-Length only
        self._refused: bytes | None = None  # the stand-in for the frame being refused
        self._refused_length = 0  # its body's length
        self._drop = 0  # bytes of a refused body still to read

    def readline(self) -> bytes:
        self._drop_refused_body()
        line = self._stream.readline(MAX_HEADER_LINE)
        if line and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = self._stream.readline(MAX_HEADER_LINE)
            return b"X-Resdsl-Dropped: an over-long header line\r\n" if line else b""
        match = _LENGTH.fullmatch(line)
        if match is None or self._length_read:
            return line
        self._length_read = True
        digits = match.group(1)
        # Compared as text first: int() refuses numbers of more than 4,300 digits.
        if len(digits) <= len(str(self._limit)) and int(digits) <= self._limit:
            return line
        length = int(digits) if len(digits) <= 30 else None
        self._refused = json.dumps(
            {"jsonrpc": "2.0", "method": REFUSED, "params": {"length": length}}
        ).encode()
        self._refused_length = length if length is not None else -1  # -1: all there is
        return b"Content-Length: %d\r\n" % len(self._refused)

    def read(self, size: int) -> bytes:
        self._length_read = False
        if self._refused is not None:  # the rest of the headers are read: the body follows
            body, self._refused = self._refused, None
            self._drop = self._refused_length
            return body
        return self._stream.read(size)

    def _drop_refused_body(self) -> None:
        while self._drop:
            chunk = self._stream.read(_DROP if self._drop < 0 else min(self._drop, _DROP))
            if not chunk:
                self._drop = 0
            elif self._drop > 0:
                self._drop -= len(chunk)


def install(server) -> None:
    """Answer each refused frame (see the module's doc) with a JSON-RPC error."""

    @server.feature(REFUSED)
    def refused(params) -> None:
        length = getattr(params, "length", None)
        size = f"{length:,} bytes" if isinstance(length, int) else "a size beyond reading"
        error = {
            "code": -32600,  # Invalid Request
            "message": f"message of {size} refused: the limit is {MAX_FRAME:,} bytes",
        }
        # A dict, not pygls's ResponseErrorMessage: its converter leaves out an id of None,
        # and JSON-RPC answers a message it could not read with `"id": null`.
        server.protocol._send_data({"jsonrpc": "2.0", "id": None, "error": error})
