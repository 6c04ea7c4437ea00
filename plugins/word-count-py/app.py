"""word-count-py: counts bytes, lines and words of the input (cross-language conformance plugin)."""

from wit_world import exports
from wit_world.imports import logging, types

NAME = "word-count-py"
VERSION = "0.1.0"

# Bytes that separate words: space, \t, \n, \v, \f, \r.
_SPACE = frozenset(b" \t\n\x0b\x0c\r")


def count(data: bytes) -> tuple[int, int, int]:
    words = 0
    in_word = False
    for b in data:
        if b in _SPACE:
            in_word = False
        elif not in_word:
            in_word = True
            words += 1
    return len(data), data.count(b"\n"), words


class Plugin(exports.Plugin):
    def get_metadata(self) -> types.PluginMetadata:
        return types.PluginMetadata(
            name=NAME,
            version=VERSION,
            description="Counts bytes, lines and words of the input (conformance plugin).",
            author="Warden examples",
        )

    def initialize(self, config: list[types.KeyValue]) -> None:
        logging.log(types.LogLevel.INFO, "word-count ready")

    def shutdown(self) -> None:
        pass

    def get_status(self) -> types.PluginStatus:
        return types.PluginStatus.READY


class Processing(exports.Processing):
    def process(self, request: types.ProcessRequest) -> types.ProcessResponse:
        data = bytes(request.input)
        b, l, w = count(data)
        out = '{"bytes":%d,"lines":%d,"words":%d}' % (b, l, w)
        return types.ProcessResponse(
            output=out.encode("ascii"), content_type="application/json", items_processed=w
        )

    def validate(self, input: bytes) -> bool:
        try:
            bytes(input).decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False
