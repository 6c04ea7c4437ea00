// Package export_warden_plugin_event_handling is what the plugin does with
// events (the exported `warden:plugin/event-handling` interface).
package export_warden_plugin_event_handling

import (
	"fmt"
	"strings"

	"wit_component/warden_plugin_logging"
	"wit_component/warden_plugin_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func OnEvent(event warden_plugin_types.Event) witTypes.Result[witTypes.Unit, warden_plugin_types.PluginError] {
	// A WIT string must be UTF-8: replace what is not.
	payload := strings.ToValidUTF8(string(event.Payload), "\uFFFD")
	warden_plugin_logging.Log(warden_plugin_types.LogLevel_Info, fmt.Sprintf(
		"%s from %s at %d: %s", event.EventType, event.Source, event.Timestamp, payload))
	// To publish an event: import "wit_component/warden_plugin_events"
	//   warden_plugin_events.EmitEvent("thing.happened", []byte(`{"id": 1}`))
	return witTypes.Ok[witTypes.Unit, warden_plugin_types.PluginError](witTypes.Unit{})
}

func SupportedEvents() []string {
	// Exact types ("order.created"), prefixes ("order.*") or "*" for all.
	return []string{"*"}
}
