"""{{name}}: {{description}}"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import logging, types

NAME = "{{name}}"
VERSION = "0.1.0"


class Plugin(exports.Plugin):
    def get_metadata(self) -> types.PluginMetadata:
        return types.PluginMetadata(
            name=NAME, version=VERSION, description="{{description}}", author="you"
        )

    def initialize(self, config: list[types.KeyValue]) -> None:
        logging.log(types.LogLevel.INFO, f"{NAME} ready")

    def shutdown(self) -> None:
        pass

    def get_status(self) -> types.PluginStatus:
        return types.PluginStatus.READY


class Processing(exports.Processing):
    def process(self, request: types.ProcessRequest) -> types.ProcessResponse:
        try:
            text = bytes(request.input).decode("utf-8")
        except UnicodeDecodeError:
            # An error for the caller: raise Err(plugin-error). Any other
            # exception traps the instance.
            raise Err(types.PluginError_InvalidInput("the input is not UTF-8 text"))
        logging.log(types.LogLevel.INFO, f"uppercasing {len(text)} characters")
        return types.ProcessResponse(
            output=text.upper().encode("utf-8"),
            content_type="text/plain",
            items_processed=len(text),
        )

    def validate(self, input: bytes) -> bool:
        try:
            bytes(input).decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False
