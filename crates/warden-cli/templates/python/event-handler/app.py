"""{{name}}: {{description}}"""

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


class EventHandling(exports.EventHandling):
    def on_event(self, event: types.Event) -> None:
        payload = bytes(event.payload).decode("utf-8", errors="replace")
        logging.log(
            types.LogLevel.INFO,
            f"{event.event_type} from {event.source} at {event.timestamp}: {payload}",
        )
        # To publish an event: from wit_world.imports import events
        #   events.emit_event("thing.happened", b'{"id": 1}')

    def supported_events(self) -> list[str]:
        # Exact types ("order.created"), prefixes ("order.*") or "*" for all.
        return ["*"]
