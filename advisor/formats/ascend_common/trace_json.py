"""Chunked reading of one big JSON array of trace events (a Chrome trace) into Structs, in bounded memory.

The file is read in chunks; each chunk is cut after its last complete top-level element and that
piece is decoded as its own array by msgspec into the caller's Struct: only the fields that the
tables read are built (3x faster than building dicts). Cut
candidates are found by bytes (`}` `,` `{` with optional whitespace); a candidate inside a nested
value can never give valid JSON (an object or string stays open), so a failed parse that ends at
the cut just means "try an earlier candidate".

An element longer than `MAX_EVENT_BYTES` (a 200 MB string in one event) is not buffered: once that
many bytes hold no complete element, the rest of it is scanned for its end (strings and nesting
tracked, bytes not kept) and it is skipped; the reader lists where it was (`oversized`).

The array may also be one member of a top-level object (a Kineto trace's `traceEvents`): the
members before it are decoded while the object is opened, those after it once the array ends
(`members`). The bytes may come from a gzip stream (`open_bytes`), decompressed chunk by chunk.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import mmap
import os
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import msgspec
import orjson

from ...errors import InputError

CHUNK_BYTES = 8 << 20  # a chunk becomes ~2x its size in Structs while it is read (dicts: ~4x)
# A single element may outgrow a chunk; a longer one is skipped. Real events are at most a few KB (a
# long call stack); decoding a 16 MiB one already costs ~3x its size in memory.
MAX_EVENT_BYTES = 16 << 20
_WS = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_COMMA, _CLOSE = ord(","), ord("}")
_OPEN_ARRAY, _CLOSE_ARRAY = ord("["), ord("]")
_META_WINDOW = 4096  # a process_name metadata event is ~100 bytes; pretty-printing adds little
_SCAN_WINDOW = 64 << 20  # bytes of the memory map searched before they are released
_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)  # not on every platform


_BYTE = re.compile(r"\(byte (\d+)\)")
_LEADING_WS = re.compile(rb"[ \t\r\n]*")
_TOKEN = re.compile(rb'[][{}",]')  # what changes the nesting outside strings
_STRING_BODY = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.DOTALL)  # up to a closing quote or a cut escape
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPENERS, _CLOSERS = frozenset(b"[{"), frozenset(b"]}")
_OPEN_OBJECT, _COLON = ord("{"), ord(":")
_GZIP_MAGIC = b"\x1f\x8b"
_RAW_CHUNK = 1 << 20  # compressed bytes read at a time: a chunk's output is bounded by the caller's buffer
_TRAILING = "trailing characters"  # msgspec's error after a complete value: the array ended in the piece


def is_gzip(path: Path) -> bool:
    """Whether `path` holds gzip data (by its magic bytes, whatever its name). False when it cannot be
    read: its reader then says why."""
    try:
        with path.open("rb") as fh:
            return fh.read(2) == _GZIP_MAGIC
    except OSError:
        return False


def open_bytes(path: Path) -> BinaryIO:
    """`path` opened for reading its bytes: a gzip file (sniffed by its magic bytes, whatever its name)
    is decompressed as it is read, never whole in memory."""
    fh = path.open("rb")
    try:
        magic = fh.read(2)
        fh.seek(0)
    except OSError:
        fh.close()
        raise
    if magic != _GZIP_MAGIC:
        return fh
    # Buffered: a read(n) or readinto gives all n bytes unless the stream ends.
    return io.BufferedReader(GzipStream(fh, path), buffer_size=_RAW_CHUNK)


def _bytes_left(fh: Any) -> int | None:
    """The bytes a plain file opened by `open_bytes` still holds; None for a decompressed stream."""
    if isinstance(fh, io.BufferedReader) and isinstance(fh.raw, io.FileIO):
        with contextlib.suppress(OSError):
            return max(0, os.fstat(fh.fileno()).st_size - fh.tell())
    return None


class GzipStream(io.RawIOBase):
    """The decompressed bytes of a gzip file (members one after another, as gzip reads them). A file
    cut short just ends early instead of raising: the bytes before the cut are read (the JSON reader
    then finds it truncated)."""

    def __init__(self, raw: BinaryIO, path: Path) -> None:
        self.raw, self.path = raw, path
        self.inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self.pending = b""  # compressed bytes not yet given to `inflate`

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        want = len(target)
        try:
            while True:
                if self.inflate.eof:  # a member ended: another may follow
                    rest = self.inflate.unused_data or self.raw.read(_RAW_CHUNK)
                    if not rest:
                        return 0
                    self.inflate, self.pending = zlib.decompressobj(zlib.MAX_WBITS | 16), rest
                data = self.inflate.unconsumed_tail or self.pending or self.raw.read(_RAW_CHUNK)
                self.pending = b""
                if not data:  # the compressed stream stops before its end
                    return 0
                out = self.inflate.decompress(data, want)
                if out:
                    target[: len(out)] = out
                    return len(out)
        except zlib.error as exc:
            raise InputError(f"{self.path}: corrupt gzip data ({exc})") from None

    def close(self) -> None:
        self.raw.close()
        super().close()


class Span(NamedTuple):
    """Bytes of a file's top-level array holding whole elements: from `start`, the first byte of an
    element (0: the file's start, its '[' included), to `stop`, just after an element's last byte
    (None: the file's end, its ']' included)."""

    start: int
    stop: int | None


class _SpanStream(io.RawIOBase):
    """The bytes of `span` in the open file `raw`, made an array of their own: '[' before an element
    that starts the span, ']' after one that ends it."""

    def __init__(self, raw: BinaryIO, span: Span) -> None:
        self.raw = raw
        raw.seek(span.start)
        self.head = b"[" if span.start else b""
        self.left = None if span.stop is None else span.stop - span.start  # file bytes still to give
        self.tail = b"" if span.stop is None else b"]"

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        if self.head:
            count = min(len(target), len(self.head))
            target[:count], self.head = self.head[:count], self.head[count:]
            return count
        if self.left is None or self.left > 0:
            with memoryview(target) as view:
                want = len(view) if self.left is None else min(len(view), self.left)
                count = self.raw.readinto(view[:want])
            if count:
                self.left = None if self.left is None else self.left - count
                return count
            self.left = 0  # the file ended early: what it holds is read as it is
        count = min(len(target), len(self.tail))
        target[:count], self.tail = self.tail[:count], self.tail[count:]
        return count


WHOLE_FILE = Span(0, None)
_ELEMENT_BOUNDARY = re.compile(rb'\}[ \t\r\n]*,[ \t\r\n]*(\{)[ \t\r\n]*"')
_BOUNDARY_SEARCH = 64 << 20  # how far past a split point a boundary is looked for


def split_spans(path: Path, parts: int) -> list[Span]:
    """`path`'s array cut into up to `parts` spans of about equal size, each cut at the first `}, {"`
    after its share. Only a guess: those bytes may also lie inside a string or a nested value. The
    reader of the span before a cut proves it: that span starts at a true element start, so reading
    it ends its array cleanly exactly when the cut is a true boundary (see `ArrayReader`)."""
    spans: list[Span] = []
    start = 0
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                return [Span(0, None)]
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                for k in range(1, parts):
                    point = max(start, size * k // parts)
                    found = _ELEMENT_BOUNDARY.search(buf, point, min(size, point + _BOUNDARY_SEARCH))
                    if found is not None:
                        spans.append(Span(start, found.start() + 1))
                        start = found.start(1)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    spans.append(Span(start, None))
    return spans


class ArrayReader:
    """Yields the elements of the JSON array in `path` batch by batch, objects decoded as `element`
    (a msgspec Struct whose fields are the keys to keep).

    `fast`, when given, is tried first on each piece (the bytes of a JSON array, valid UTF-8): what
    it returns, unless None, is yielded instead of the decoded list and must have a len().

    After iteration, `count` is the number of elements read, `truncated_at` the file size when the
    array was cut short (complete elements before the cut are still yielded) and `oversized` the
    (file offset, length in bytes) of each element longer than `max_element_bytes`, skipped. Invalid
    JSON before the end, or a file that is not an array, raises InputError naming the file and byte
    offset (of the decompressed bytes for a gzip file).

    With `member`, the file is an object and the array is that member's value: `members` holds the
    others (decoded; those before the array must fit in `max_element_bytes`). `refuse(key, members
    so far)` is asked before each member's value is read (key None: the top level is an array, not
    an object): a reason given is raised as InputError. `float_hook` is msgspec's: what untyped
    float literals become (e.g. `str`, to keep a timestamp's digits exact).

    With `span` (a plain file's array, not `member` mode), only the elements in those bytes are read,
    as if they were the whole array (see `split_spans`); offsets stay the file's.
    """

    def __init__(
        self,
        path: Path,
        element: type,
        chunk_bytes: int = CHUNK_BYTES,
        fast: Callable[[memoryview], Any] | None = None,
        max_element_bytes: int = MAX_EVENT_BYTES,
        member: str | None = None,
        refuse: Callable[[str | None, dict[str, Any]], str | None] | None = None,
        float_hook: Callable[[str], Any] | None = None,
        span: Span | None = None,
    ) -> None:
        self.path = path
        self.span = span
        self.member = member
        self.refuse = refuse
        self.members: dict[str, Any] = {}
        self.fast = fast
        self.max_element_bytes = max(1, max_element_bytes)
        self.oversized: list[tuple[int, int]] = []
        # Elements that are not objects are still decoded (and left to the consumer), as any JSON value.
        self.decoder = msgspec.json.Decoder(
            list[element | list | str | int | float | bool | None], float_hook=float_hook
        )
        # A chunk is parsed whole: one larger than the limit would let a longer element through.
        self.chunk_bytes = max(1, min(chunk_bytes, self.max_element_bytes))
        self.count = 0
        self.truncated_at: int | None = None

    def read_members_before(self) -> dict[str, Any]:
        """The members before the array (`member` mode), read without reading the array."""
        try:
            with open_bytes(self.path) as fh:
                self._open_member(fh)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror})") from None
        return self.members

    def __iter__(self) -> Iterator[list[Any]]:
        try:
            with open_bytes(self.path) as fh:
                yield from self._batches(fh if self.span is None else _SpanStream(fh, self.span))
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror})") from None

    def _batches(self, fh: Any) -> Iterator[list[Any]]:
        # buf[:size] holds the file's bytes from offset `offset`; buf[0] is the byte before the next
        # element ('[' or a separator). Pieces are parsed in place, with that byte and the one after
        # the piece set to '[' and ']'. buf is reused, never shrunk (bytes after `size` are stale):
        # a fresh buffer per chunk costs more in page faults and copies than the decoding of its JSON.
        buf, offset = self._open_member(fh) if self.member is not None else self._open_array(fh)
        if self.span is not None and self.span.start:  # the stream's '[' stands for the byte before it
            offset += self.span.start - 1
        size, eof = len(buf), False
        while True:
            if not eof and size < self.chunk_bytes:
                size, eof = self._read(fh, buf, size, self.chunk_bytes)
                continue
            if eof:
                body = bytes(buf[1:size])
                if self.member is not None:
                    body = self._split_members(body, offset + 1)
                yield from self._tail(body, offset + 1)
                return
            cut = self._cut(buf, size, offset)
            if cut is None and size - 1 <= self.max_element_bytes:
                # One element longer than a chunk so far. Doubling (no quadratic re-scans), up to one
                # byte over the limit.
                want = min(max(self.chunk_bytes, size), self.max_element_bytes + 2 - size)
                size, eof = self._read(fh, buf, size, want)
                continue
            if cut is None:  # over the limit without an object boundary: see what the top level holds
                nesting = _Nesting()
                last, stop = None, None
                while (found := nesting.find(buf, 1 if last is None else last + 1, size)) is not None:
                    if found[1] != _COMMA:
                        stop = found[0]
                        break
                    last = found[0]
                if last is not None:  # elements that are not objects (no '},{' between them)
                    events = self._parse(buf, last, offset)
                    if events is None:
                        raise InputError(f"{self.path}: invalid JSON at byte {offset + last}")
                    cut = events, last + 1
                elif stop is not None:  # the array's end (or a stray '}') within the limit
                    if buf[stop] != _CLOSE_ARRAY:
                        raise InputError(f"{self.path}: invalid JSON at byte {offset + stop}")
                    yield from self._tail(bytes(buf[1 : stop + 1]), offset + 1)
                    if self.member is not None:
                        self._read_members_after(fh, bytes(buf[stop + 1 : size]), offset + stop + 1)
                    else:
                        self._expect_only_whitespace(fh, buf, stop + 1, size, offset)
                    return
                else:
                    skipped = self._skip_element(fh, buf, size, offset, nesting)
                    if skipped is None:  # the file ends inside it
                        return
                    size, offset = skipped
                    continue
            events, next_start = cut
            del cut
            self.count += len(events)
            yield events
            del events  # one batch of objects alive at a time: the consumer dropped its reference
            rest = size - (next_start - 1)
            buf[:rest] = buf[next_start - 1 : size]  # the same length: moved in place
            size, offset = rest, offset + next_start - 1

    def _read(self, fh: Any, buf: bytearray, size: int, want: int) -> tuple[int, bool]:
        """Read up to `want` bytes into buf after `size` (growing buf if needed): (new size, at end)."""
        if len(buf) < size + want:
            # Room for what a plain file still holds (and a byte to see its end), not a chunk more:
            # zeroing 16 MiB of buffer cost a 2 MiB trace ~30 ms, more than scanning it.
            left = _bytes_left(fh)
            grown = size + want + self.chunk_bytes if left is None or left >= want else size + left + 1
            buf.extend(bytes(max(0, grown - len(buf))))
        with memoryview(buf) as view, view[size : size + want] as target:
            count = fh.readinto(target)
        return size + count, count == 0

    def _skip_element(
        self, fh: Any, buf: bytearray, size: int, offset: int, nesting: _Nesting
    ) -> tuple[int, int] | None:
        """Skip the element that starts buf[1:size] (`nesting` has scanned that far without its end):
        read on, a chunk at a time into buf, until the array's top level continues. Then buf holds
        the rest of that chunk from the separator as buf[0]: (size, offset). None at the end of the
        file (the array is truncated; InputError when it held no element)."""
        start = offset + _LEADING_WS.match(buf, 1, size).end()
        base = offset + size  # file offset of buf[0] after the next read
        want = min(len(buf), self.chunk_bytes)
        while True:
            with memoryview(buf) as view, view[:want] as target:
                count = fh.readinto(target)
            if count == 0:
                self.truncated_at = base
                if not self.count:
                    raise InputError(f"{self.path}: truncated or invalid JSON at byte {base}")
                return None
            found = nesting.find(buf, 0, count)
            if found is not None:
                break
            base += count
        at, byte = found
        self.oversized.append((start, base + at - start))
        if byte == _COMMA:  # buf[0] is the separator before the next element
            buf[: count - at] = buf[at:count]
            return count - at, base + at
        # ']' or a stray '}': kept after a placeholder buf[0], for the end of the array to judge it
        buf[1 : count - at + 1] = buf[at:count]
        return count - at + 1, base + at - 1

    def _expect_only_whitespace(self, fh: Any, buf: bytearray, start: int, size: int, offset: int) -> None:
        """After the array's end at buf[start - 1] (file offset `offset` + index): InputError unless
        the rest of buf[:size] and of the file is whitespace."""
        while True:
            rest = _LEADING_WS.match(buf, start, size).end()
            if rest < size:
                raise InputError(f"{self.path}: invalid JSON at byte {offset + rest}")
            offset += size
            with memoryview(buf) as view, view[: min(len(buf), self.chunk_bytes)] as target:
                size = fh.readinto(target)
            if not size:
                return
            start = 0

    def _open_array(self, fh: Any) -> tuple[bytearray, int]:
        head = b""
        while not (body := head.removeprefix(_BOM).lstrip(_WS)):
            data = fh.read(max(self.chunk_bytes, 64))
            if not data:
                raise InputError(f"{self.path}: empty file, expected a JSON array of trace events")
            head += data
        at = len(head) - len(body)
        if body[:1] != b"[":
            raise InputError(
                f"{self.path}: not a JSON array of trace events (byte {at} is {body[:1]!r}, expected '[')"
            )
        return bytearray(body), at

    def _open_member(self, fh: Any) -> tuple[bytearray, int]:
        """Read the top-level object up to the value of `member` (the other members before it go to
        `members`): the bytes from that array's '[' on, and their offset."""
        data = bytearray()

        def at(pos: int) -> int:
            """The first non-whitespace byte from `pos` (reading on as needed): its index."""
            while True:
                pos = _LEADING_WS.match(data, pos).end()
                if pos < len(data):
                    return pos
                self._read_head(fh, data)

        pos = at(0)
        if data.startswith(_BOM):
            pos = at(len(_BOM))
        if data[pos] != _OPEN_OBJECT:
            is_array = data[pos] == _OPEN_ARRAY
            if is_array and self.refuse is not None and (reason := self.refuse(None, {})) is not None:
                raise InputError(f"{self.path}: {reason}")
            what = "a JSON array" if is_array else f"{bytes(data[pos : pos + 1])!r}"
            raise InputError(f"{self.path}: the top level is {what}, not an object with {self.member!r}")
        pos = at(pos + 1)
        while True:
            if data[pos] == _CLOSE:
                raise InputError(f"{self.path}: no {self.member!r} key in the top-level object")
            if data[pos] != _QUOTE:
                raise InputError(f"{self.path}: invalid JSON at byte {pos}")
            while (end := _STRING_BODY.match(data, pos + 1).end()) >= len(data):
                self._read_head(fh, data)
            try:
                key = msgspec.json.decode(data[pos : end + 1])
            except msgspec.DecodeError:
                raise InputError(f"{self.path}: invalid JSON at byte {pos}") from None
            pos = at(end + 1)
            if data[pos] != _COLON:
                raise InputError(f"{self.path}: invalid JSON at byte {pos}")
            pos = at(pos + 1)
            if self.refuse is not None and (reason := self.refuse(key, self.members)) is not None:
                raise InputError(f"{self.path}: {reason}")
            if key == self.member:
                if data[pos] != _OPEN_ARRAY:
                    raise InputError(f"{self.path}: {self.member!r} is not an array (byte {pos})")
                return data[pos:], pos
            nesting, scan = _Nesting(), pos
            while (found := nesting.find(data, scan, len(data))) is None:
                scan = len(data)
                self._read_head(fh, data)
            try:
                self.members[key] = msgspec.json.decode(bytes(data[pos : found[0]]))
            except msgspec.DecodeError:
                raise InputError(f"{self.path}: invalid JSON at byte {pos} (the value of {key!r})") from None
            pos = found[0]
            if found[1] == _COMMA:
                pos = at(pos + 1)

    def _read_head(self, fh: Any, data: bytearray) -> None:
        """Append the next bytes of the object's members before the array to `data`."""
        if len(data) > self.max_element_bytes:
            raise InputError(f"{self.path}: no {self.member!r} in the first {len(data)} bytes")
        more = fh.read(min(1 << 16, self.chunk_bytes))  # the members before the array: a few KB
        if not more:
            raise InputError(f"{self.path}: truncated or invalid JSON at byte {len(data)}")
        data += more

    def _split_members(self, body: bytes, offset: int) -> bytes:
        """The last bytes read (from `offset`), up to the array's end; the members after it are read
        into `members`. A body that does not reach the array's end is returned whole (truncated)."""
        piece = b"[" + body
        try:
            self.decoder.decode(piece)
        except msgspec.DecodeError as exc:
            found = _BYTE.search(str(exc))
            if _TRAILING in str(exc) and found is not None:
                end = piece.rfind(b"]", 0, int(found.group(1)))  # the array's ']' in the piece
                self._read_members_tail(body[end:], offset + end)
                return body[:end]
            at = _token_start(piece, int(found.group(1))) if found else _error_offset(piece)
            if at < len(piece.rstrip(_WS)):  # not where a cut would stop it: invalid JSON
                raise InputError(f"{self.path}: invalid JSON at byte {offset - 1 + at}") from None
            return body
        except msgspec.ValidationError:
            return body
        self.truncated_at = offset + len(body)  # the array ends the file: the object is not closed
        return body

    def _read_members_after(self, fh: Any, rest: bytes, offset: int) -> None:
        """The members after the array, from `rest` (at `offset`) and the rest of the file."""
        limit = self.max_element_bytes
        text = rest + fh.read(max(0, limit + 1 - len(rest)))
        if len(text) > limit:
            self.oversized.append((offset, len(text) + len(fh.read())))
            return
        self._read_members_tail(text, offset)

    def _read_members_tail(self, text: bytes, offset: int) -> None:
        """The bytes after the array's ']' (at `offset`): `, "key": value, ... }` or `}`."""
        start = _LEADING_WS.match(text).end()
        if start == len(text):
            self.truncated_at = offset + len(text)
            return
        if text[start] == _CLOSE:  # no members after the array
            end = _LEADING_WS.match(text, start + 1).end()
            if end < len(text):
                raise InputError(f"{self.path}: invalid JSON at byte {offset + end}")
            return
        if text[start] != _COMMA:
            raise InputError(f"{self.path}: invalid JSON at byte {offset + start}")
        body = b"{" + text[start + 1 :]
        try:
            members = msgspec.json.decode(body)
        except msgspec.DecodeError:
            at = start + _error_offset(body)
            if at >= len(text.rstrip(_WS)):
                self.truncated_at = offset + len(text)
                return
            raise InputError(f"{self.path}: invalid JSON at byte {offset + at}") from None
        for key, value in members.items():
            self.members.setdefault(key, value)

    def _cut(self, buf: bytearray, hi: int, offset: int) -> tuple[list[Any], int] | None:
        """Parse the longest run of complete elements in buf[1:hi]: (elements, next element's index)."""
        while True:
            for end, next_start in _boundaries(buf, hi):
                events = self._parse(buf, end, offset)
                if events is not None:
                    return events, next_start
                # A cut inside a nested value: halve the piece so a run of such cuts stays cheap.
                hi = end // 2
                break
            else:
                return None

    def _tail(self, body: bytes, offset: int) -> Iterator[list[Any]]:
        """The last piece (from file offset `offset`): the array's end, or a truncated array."""
        size = offset + len(body)
        body = body.rstrip(_WS)
        if body.endswith(b"]"):
            events = self._parse(bytearray(b" " + body), len(body), offset - 1, strict=False)
            if events is not None:
                self.count += len(events)
                yield events
                return
        # Truncated: keep every complete element, cutting as in the main loop until none is left.
        self.truncated_at = size
        buf, offset = bytearray(b" " + body.rstrip(b",").rstrip(_WS) + b" "), offset - 1
        while True:
            events = self._parse(buf, len(buf) - 1, offset, strict=False)  # it stops between elements
            cut = None if events is not None else self._cut(buf, len(buf), offset)
            if cut is not None:
                events, next_start = cut
                del buf[: next_start - 1]
                offset += next_start - 1
            if events:
                self.count += len(events)
                yield events
            if cut is None:
                break
        if not self.count:
            raise InputError(f"{self.path}: truncated or invalid JSON at byte {size}")

    def _parse(self, buf: bytearray, end: int, offset: int, strict: bool = True) -> list[Any] | None:
        """The elements in buf[1:end], or None when the piece stops inside an element.

        An error before the end of the piece is invalid JSON: InputError with its file offset (or
        None when not `strict`, for the tail, where a truncated file may also fail early).
        """
        first, last = buf[0], buf[end]
        buf[0], buf[end] = _OPEN_ARRAY, _CLOSE_ARRAY
        try:
            # In place (the decoded values copy what they keep); msgspec does not check skipped fields
            # for UTF-8, nor say where a string was bad: the usual all-ASCII buffer is checked at once.
            with memoryview(buf) as view, view[: end + 1] as piece:
                at = None if buf.isascii() else _invalid_utf8(bytes(piece))
                if at is None:
                    if self.fast is not None and (batch := self.fast(piece)) is not None:
                        return batch
                    try:
                        return self.decoder.decode(piece)
                    except msgspec.ValidationError as exc:  # a number out of range: no byte offset given
                        if not strict:
                            return None
                        raise InputError(f"{self.path}: invalid JSON after byte {offset} ({exc})") from None
                    except msgspec.DecodeError as exc:
                        if self.member is not None and _TRAILING in str(exc):
                            return None  # a cut after the array's end, in the members that follow it
                        found, text = _BYTE.search(str(exc)), bytes(piece)
                        at = _token_start(text, int(found.group(1))) if found else _error_offset(text)
                    at -= 1  # minus the '['
        finally:
            buf[0], buf[end] = first, last
        if at >= end - 1 or not strict:
            return None
        raise InputError(f"{self.path}: invalid JSON at byte {offset + 1 + at}")


class _Nesting:
    """The nesting of a JSON array's element that is read piece by piece: depth and whether a string
    (or an escape in it) is open carry over from one piece to the next."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False  # the previous piece ended with the backslash of an escape

    def find(self, data: bytearray, pos: int, end: int) -> tuple[int, int] | None:
        """(index, byte) of the first ',' ']' or '}' of the array's top level in data[pos:end]."""
        while pos < end:
            if self.in_string:
                if self.escaped:
                    pos, self.escaped = pos + 1, False
                    continue
                pos = _STRING_BODY.match(data, pos, end).end()
                if pos < end:  # a closing quote, or an escape's backslash as the last byte
                    self.escaped = data[pos] == _BACKSLASH
                    self.in_string = self.escaped
                    pos += 1
                continue
            token = _TOKEN.search(data, pos, end)
            if token is None:
                return None
            pos = token.end()
            byte = data[pos - 1]
            if byte == _QUOTE:
                self.in_string = True
            elif byte in _OPENERS:
                self.depth += 1
            elif not self.depth:
                return pos - 1, byte
            elif byte in _CLOSERS:
                self.depth -= 1
        return None


def _token_start(piece: bytes, at: int) -> int:
    """The start of a bad literal such as `nope` around byte `at`; msgspec names a byte inside it or
    just after it. Other errors stay at `at`."""
    start = at
    while start > 0 and piece[start - 1 : start].isalpha():  # ASCII letters only
        start -= 1
    return start if start < at and piece[start - 1] in b":,[ \t\r\n" else at


def _error_offset(piece: bytes) -> int:
    """Where the JSON in `piece` fails, for msgspec's "truncated" errors, which name no byte: usually an
    object or string left open by a cut inside a nested value (the end), but also a lone surrogate
    escape, which must not pass for a truncation. Rare: only then is the piece parsed again."""
    try:
        orjson.loads(piece)
    except orjson.JSONDecodeError as exc:
        return len(exc.doc[: exc.pos].encode("utf-8", "surrogatepass"))
    return len(piece)


def _invalid_utf8(piece: bytes) -> int | None:
    """The index of the first byte that is not valid UTF-8, or None."""
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def _boundaries(buf: bytes, hi: int) -> Iterator[tuple[int, int]]:
    """Possible element boundaries before `hi`, last first: (end after '}', start of the next '{')."""
    pos = hi
    while (start := buf.rfind(b"{", 0, pos)) > 0:
        pos = start
        j = start - 1
        while j >= 0 and buf[j] in _WS:
            j -= 1
        if j < 1 or buf[j] != _COMMA:
            continue
        j -= 1
        while j >= 0 and buf[j] in _WS:
            j -= 1
        if j >= 0 and buf[j] == _CLOSE:
            yield j + 1, start


def mapped_windows(
    path: Path, first: int = 0, stop: int | None = None
) -> Iterator[tuple[mmap.mmap, int, int]]:
    """The read-only memory map of `path` as (map, start, end) windows to search in turn (GB/s,
    nothing copied), each reaching `_META_WINDOW` bytes into the next: a match that starts in a window
    ends in it, and bytes up to `_META_WINDOW` before a match may be read. The windows cover the
    bytes from `first` to `stop` (default: the whole file). The pages of each searched window are
    released: those of a mapped file count in the process's resident memory, and a multi-GB trace
    would otherwise be resident in full."""
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            stop = size if stop is None else min(stop, size)
            if size == 0 or first >= stop:
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                released = first // mmap.PAGESIZE * mmap.PAGESIZE
                for start in range(first, stop, _SCAN_WINDOW):
                    yield buf, start, min(size, stop + _META_WINDOW, start + _SCAN_WINDOW + _META_WINDOW)
                    done = (start + _SCAN_WINDOW - _META_WINDOW) // mmap.PAGESIZE * mmap.PAGESIZE
                    if _DONTNEED is not None and done > released:
                        buf.madvise(_DONTNEED, released, done - released)
                        released = done
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None


def scan_process_names(path: Path, span: Span = WHOLE_FILE) -> dict[Any, str]:
    """pid -> name from the `process_name` metadata events, wherever they are in the file (or in
    `span`; the names of consecutive spans, merged in order, are the file's): a byte search (metadata
    may follow the events that use it, and events are classified by their process while they are read)."""
    needle = b'"process_name"'
    names: dict[Any, str] = {}
    for buf, start, end in mapped_windows(path, span.start, span.stop):
        for hit in find_all(buf, needle, start, end):
            lo = max(0, hit - _META_WINDOW)
            found = _process_name_at(buf[lo : hit + _META_WINDOW], hit - lo)
            if found is not None:
                names[found[0]] = found[1]
    return names


def _libc_memmem() -> Any:
    with contextlib.suppress(OSError, AttributeError):  # no C library with memmem (e.g. Windows)
        memmem = ctypes.CDLL(None).memmem
        memmem.restype = ctypes.c_void_p
        memmem.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
        return memmem
    return None


_MEMMEM = _libc_memmem()


def find_all(buf: Any, needle: bytes, start: int, end: int) -> list[int]:
    """The offsets of `needle` in buf[start:end] (a buffer such as a memory map). glibc's memmem where
    there is one: ~3x bytes.find's speed on JSON, whose search stops at every byte equal to the
    needle's last (here a quote, the commonest byte of a trace); in a long file the process names'
    search was ~15% of the read."""
    hits: list[int] = []
    if _MEMMEM is None or end - start < len(needle):
        while (hit := buf.find(needle, start, end)) >= 0:
            hits.append(hit)
            start = hit + 1
        return hits
    import numpy as np  # only here: discovery uses this module without numpy

    # The address of a read-only buffer; the view (an export that would keep the map from being
    # closed) is released before returning.
    view = np.frombuffer(buf, np.uint8)
    base = view.ctypes.data
    try:
        while end - start >= len(needle):
            found = _MEMMEM(base + start, end - start, needle, len(needle))
            if not found:
                break
            hits.append(found - base)
            start = hits[-1] + 1
    finally:
        del view
    return hits


def _process_name_at(buf: bytes, hit: int) -> tuple[Any, str] | None:
    """(pid, name) of the `process_name` metadata event around byte `hit`, or None (e.g. in a string)."""
    lo, hi = max(0, hit - _META_WINDOW), hit + _META_WINDOW
    start = hit
    for _ in range(3):  # the event's '{', or a nested one when args come before the name
        start = buf.rfind(b"{", lo, start)
        if start < 0:
            return None
        end = hit
        for _ in range(3):  # the event's '}', or args' '}' first
            end = buf.find(b"}", end, hi) + 1
            if end <= 0:
                break
            try:
                event = msgspec.json.decode(buf[start:end])
            except (msgspec.DecodeError, UnicodeDecodeError):
                continue
            if not (
                isinstance(event, dict) and event.get("ph") == "M" and event.get("name") == "process_name"
            ):
                continue
            args, pid = event.get("args"), event.get("pid")
            if isinstance(args, dict) and isinstance(args.get("name"), str) and isinstance(pid, (int, str)):
                return pid, args["name"]
            return None
    return None
