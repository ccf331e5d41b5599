"""A lean encoder for the metric families of pgradar's own sections, byte for byte prometheus_client's.

prometheus_client's encoders spend most of a /metrics render on work that is
the same for every sample of a family: the labels are sorted and their names
escaped per sample, and in OpenMetrics every character of every sample name
is checked in Python. pgradar's sections build gauges and counters only
(``Families``), each with one set of label names and no timestamps,
exemplars or ``_created`` samples, so the text around a family's label values
is the same in all its samples. That text is taken from prometheus_client
itself, once per family name and label set: the family's header, and a sample
line written with marker values, which shows where each label value and the
value go and how the names are escaped for the format and escaping scheme
asked for. The output is thus prometheus_client's own, byte for byte
(tests/unit/test_encoding.py); a family that does not fit (another type, a
timestamp, an exemplar, a sample of another name) is encoded by
prometheus_client.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import partial
from operator import itemgetter
from typing import Any

from prometheus_client import exposition as text_format
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_format
from prometheus_client.utils import floatToGoString

OPENMETRICS_EOF = b"# EOF\n"
HELP = b"# HELP "

# (family name, its HELP/TYPE lines, its sample lines) in the encoder's order
Blocks = list[tuple[bytes, bytes, bytes]]
Encoder = Callable[[Any], bytes]
BlockEncoder = Callable[[Iterable[Metric]], Blocks]


def family_blocks(body: bytes) -> Blocks:
    """An encoded exposition cut into its families.

    Every family an encoder writes starts with its ``# HELP`` line, and a
    sample line never holds a raw newline (label values escape it), so a
    line starting ``# HELP`` is always a family's start.
    """
    out: Blocks = []
    text = body.removesuffix(OPENMETRICS_EOF)
    if not text:
        return out
    for chunk in (b"\n" + text).split(b"\n" + HELP)[1:]:
        if not chunk.endswith(b"\n"):
            chunk += b"\n"
        end = chunk.index(b"\n") + 1
        while chunk.startswith(b"# ", end):  # TYPE, UNIT
            end = chunk.index(b"\n", end) + 1
        out.append((chunk[: chunk.index(b" ")], HELP + chunk[:end], chunk[end:]))
    return out


class _Given:
    """A registry of given families, for prometheus_client's encoders (which only call ``collect``)."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self.metrics


# Family names and label sets come from the catalogue (about 150); the bound only guards against misuse.
MAX_FAMILIES = 4096


class _EscapedValues(dict[str, str]):
    """Label values as both formats write them, kept because most repeat in every series of a target.

    A hit is one dictionary look-up in C (``map(cache.__getitem__, ...)``),
    where escaping is three ``str.replace`` calls per value. The values kept
    are those of the last two renders (``forget_unused``): under statement
    churn every new queryid is a new value, and a cache bounded only by its
    size grew by megabytes an hour before it was cleared.
    """

    def __init__(self) -> None:
        super().__init__()
        self.older: dict[str, str] = {}

    def __missing__(self, value: str) -> str:
        escaped = self.older.get(value)
        if escaped is None:
            escaped = value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
        self[value] = escaped
        return escaped

    def forget_unused(self) -> None:
        """A new generation: values not asked for since the last call are dropped at the next."""
        self.older = self.copy()
        self.clear()


ESCAPED_LABEL_VALUES = _EscapedValues()
escape_label_value = ESCAPED_LABEL_VALUES.__getitem__
forget_unused_label_values = ESCAPED_LABEL_VALUES.forget_unused


def go_float(value: float) -> str:
    """``floatToGoString``: a float below a million is its ``repr``, which is most values and the fast case."""
    if type(value) is float and -math.inf < value < 1e6:
        return repr(value)
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


# Marker label values of the sample line read for a family: no escaping scheme changes them.
_MARK = "\ue000{}\ue001"
_MARK_VALUE, _MARK_VALUE_TEXT = 1e7, "1e+07\n"
# A second sample line checks the template against prometheus_client, escapes and the Go float form included.
_CHECK_VALUE = '\\a"\nb'
_CHECK_NUMBER = 12345678.5


class _Line:
    """How a family's sample line is written: its label values in the order the line holds them, and the text around."""

    __slots__ = ("keys", "pick", "write")

    def __init__(self, keys: tuple[str, ...], template: str) -> None:
        self.keys = keys
        self.pick: Callable[[dict[str, str]], Any] | None = itemgetter(*keys) if len(keys) > 1 else None
        self.write: Callable[..., str] = template.format


class LeanEncoder:
    """The lean encoder for one format and escaping scheme, defined by the prometheus_client encoder it matches."""

    def __init__(self, reference: Encoder) -> None:
        self.reference = reference
        self._headers: dict[tuple[str, str, str, str], tuple[bytes, bytes] | None] = {}
        self._lines: dict[tuple[str, str, str, tuple[str, ...]], _Line | None] = {}
        self.tail = OPENMETRICS_EOF if reference(_Given([])).endswith(OPENMETRICS_EOF) else b""

    def encode(self, registry: Any) -> bytes:
        """The exposition of ``registry`` (anything with ``collect``), as ``reference`` writes it."""
        blocks = self.blocks(registry.collect())
        body = b"".join(part for _, header, lines in blocks for part in (header, lines))
        return body + self.tail

    def blocks(self, metrics: Iterable[Metric]) -> Blocks:
        """The families already cut as ``family_blocks`` cuts an encoded body, which a PartedRegistry caches."""
        out: Blocks = []
        for metric in metrics:
            block = self.family(metric)
            if block is None:
                out.extend(self._by_reference([metric]))
            else:
                out.append(block)
        return out

    def _by_reference(self, metrics: list[Metric]) -> Blocks:
        return family_blocks(self.reference(_Given(metrics)))

    def family(self, metric: Metric) -> tuple[bytes, bytes, bytes] | None:
        kind = metric.type
        if kind != "gauge" and kind != "counter":
            return None
        header_key = (metric.name, kind, metric.documentation, metric.unit)
        if header_key in self._headers:
            header = self._headers[header_key]
        else:
            header = self._header(metric)
            if len(self._headers) >= MAX_FAMILIES:
                self._headers.clear()
            self._headers[header_key] = header
        if header is None:
            return None
        samples = metric.samples
        if not samples:
            return (*header, b"")
        expected = metric.name + "_total" if kind == "counter" else metric.name
        line_key = (metric.name, kind, metric.unit, tuple(samples[0].labels))
        if line_key in self._lines:
            line = self._lines[line_key]
        else:
            line = self._line(metric, expected, line_key[3])
            if len(self._lines) >= MAX_FAMILIES:
                self._lines.clear()
            self._lines[line_key] = line
        if line is None:
            return None
        text = self._samples(samples, expected, line)
        return None if text is None else (*header, text.encode())

    @staticmethod
    def _samples(samples: list[Any], expected: str, line: _Line) -> str | None:
        """The sample lines, or None when a sample is not one the template writes (prometheus_client does it)."""
        write, count, pick = line.write, len(line.keys), line.pick
        # go_float inlined: this loop runs once per sample, and a call per sample showed in profiles
        number, low, high = float, -math.inf, 1e6
        out: list[str] = []
        append = out.append
        try:
            if count == 0:
                for name, labels, value, timestamp, exemplar, native in samples:
                    if (
                        name != expected
                        or labels
                        or timestamp is not None
                        or exemplar is not None
                        or native is not None
                    ):
                        return None
                    append(write(repr(value) if type(value) is number and low < value < high else go_float(value)))
            elif count == 1:
                (key,) = line.keys
                for name, labels, value, timestamp, exemplar, native in samples:
                    if (
                        name != expected
                        or len(labels) != 1
                        or timestamp is not None
                        or exemplar is not None
                        or native is not None
                    ):
                        return None
                    append(
                        write(
                            escape_label_value(labels[key]),
                            repr(value) if type(value) is number and low < value < high else go_float(value),
                        )
                    )
            else:
                assert pick is not None
                for name, labels, value, timestamp, exemplar, native in samples:
                    if (
                        name != expected
                        or len(labels) != count
                        or timestamp is not None
                        or exemplar is not None
                        or native is not None
                    ):
                        return None
                    append(
                        write(
                            *map(escape_label_value, pick(labels)),
                            repr(value) if type(value) is number and low < value < high else go_float(value),
                        )
                    )
        except (KeyError, ValueError, TypeError, AttributeError):  # a missing label, a sample of another shape
            return None
        return "".join(out)

    def _header(self, metric: Metric) -> tuple[bytes, bytes] | None:
        """The family's name and header as prometheus_client writes them (one family, no samples)."""
        probe = Metric(metric.name, metric.documentation, metric.type, metric.unit)
        blocks = self._by_reference([probe])
        if len(blocks) != 1 or blocks[0][2]:
            return None
        name, header, _ = blocks[0]
        return name, header

    def _line(self, metric: Metric, sample_name: str, keys: tuple[str, ...]) -> _Line | None:
        """The template of the family's sample lines, read from a sample prometheus_client writes with markers."""
        order = tuple(sorted(keys))
        probe = Metric(metric.name, "", metric.type, metric.unit)
        probe.add_sample(sample_name, {k: _MARK.format(i) for i, k in enumerate(order)}, _MARK_VALUE)
        blocks = self._by_reference([probe])
        if len(blocks) != 1 or not blocks[0][2].endswith(_MARK_VALUE_TEXT.encode()):
            return None
        text = blocks[0][2].decode()[: -len(_MARK_VALUE_TEXT)]
        fragments, start = [], 0
        for i in range(len(order)):
            at = text.find(_MARK.format(i), start)
            if at < 0:
                return None
            fragments.append(text[start:at])
            start = at + len(_MARK.format(i))
        fragments.append(text[start:])
        if any("\ue000" in f or "\ue001" in f for f in fragments):
            return None
        template = "{}".join(f.replace("{", "{{").replace("}", "}}") for f in fragments) + "{}\n"
        line = _Line(order, template)
        check = Metric(metric.name, "", metric.type, metric.unit)
        values = {k: _CHECK_VALUE + k for k in order}
        check.add_sample(sample_name, values, _CHECK_NUMBER)
        expected = self._by_reference([check])
        mine = self._samples(check.samples, sample_name, line)
        if len(expected) != 1 or mine is None or mine.encode() != expected[0][2]:
            return None
        return line


_ENCODERS: dict[tuple[Any, ...], LeanEncoder] = {}
# Formats times escaping schemes are a handful; the version comes from a client's Accept header.
MAX_ENCODERS = 32


def _lean(reference: Callable[..., bytes], **options: str) -> LeanEncoder:
    key = (reference, *sorted(options.items()))
    encoder = _ENCODERS.get(key)
    if encoder is None:
        if len(_ENCODERS) >= MAX_ENCODERS:
            _ENCODERS.clear()
        encoder = _ENCODERS[key] = LeanEncoder(partial(reference, **options))
    return encoder


def lean_blocks(encoder: Callable[..., bytes]) -> BlockEncoder | None:
    """Our encoder, as blocks, for one of prometheus_client's (``choose_encoder`` may bind its options); else None."""
    options: dict[str, Any] = {}
    function = encoder
    if isinstance(encoder, partial):
        if encoder.args:
            return None
        function, options = encoder.func, dict(encoder.keywords)
    if function is text_format.generate_latest and set(options) <= {"escaping"}:
        return _lean(function, **options).blocks
    if function is openmetrics_format.generate_latest and set(options) <= {"escaping", "version"}:
        return _lean(function, **options).blocks
    return None
