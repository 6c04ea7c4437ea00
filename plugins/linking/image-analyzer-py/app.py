"""image-analyzer-py: brightness statistics of a PNG or JPEG image.

The image is decoded by another plugin: this one imports
`warden-example:image/decoder` (wit/image.wit), and the host wires the calls
to the plugin its manifest links, the Rust `image-decoder`, which runs in
its own sandbox and limits. The answer is byte for byte the one of the Rust
`image-stats` plugin.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import decoder, logging, types

NAME = "image-analyzer-py"
VERSION = "0.1.0"


def summarize(width: int, height: int, pixels: bytes) -> str:
    """Min, max, mean (rounded down) and a histogram of the four quarters of the range."""
    histogram = [0, 0, 0, 0]
    for p in pixels:
        histogram[p >> 6] += 1
    count = len(pixels)
    low = min(pixels) if count else 0
    high = max(pixels) if count else 0
    mean = sum(pixels) // count if count else 0
    return (
        '{"width":%d,"height":%d,"min":%d,"max":%d,"mean":%d,"histogram":[%d,%d,%d,%d]}'
        % (width, height, low, high, mean, *histogram)
    )


class Plugin(exports.Plugin):
    def get_metadata(self) -> types.PluginMetadata:
        return types.PluginMetadata(
            name=NAME,
            version=VERSION,
            description="Brightness statistics of an image decoded by the linked image-decoder plugin.",
            author="Warden examples",
        )

    def initialize(self, config: list[types.KeyValue]) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def get_status(self) -> types.PluginStatus:
        return types.PluginStatus.READY


class Processing(exports.Processing):
    def process(self, request: types.ProcessRequest) -> types.ProcessResponse:
        try:
            image = decoder.decode(bytes(request.input))
        except Err as e:
            raise Err(types.PluginError_InvalidInput(e.value))
        logging.log(
            types.LogLevel.DEBUG,
            "decoded %dx%d through the linked decoder" % (image.width, image.height),
        )
        out = summarize(image.width, image.height, bytes(image.pixels))
        return types.ProcessResponse(
            output=out.encode("ascii"),
            content_type="application/json",
            items_processed=image.width * image.height,
        )

    def validate(self, input: bytes) -> bool:
        data = bytes(input)
        return data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")
