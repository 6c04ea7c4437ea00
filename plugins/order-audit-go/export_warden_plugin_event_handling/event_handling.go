// Package export_warden_plugin_event_handling counts each order event in the
// host's key-value store (the exported `warden:plugin/event-handling`
// interface).
package export_warden_plugin_event_handling

import (
	"fmt"

	"wit_component/warden_plugin_logging"
	"wit_component/warden_plugin_store"
	"wit_component/warden_plugin_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// ownStore is the plugin's private namespace; a named store would need a
// `[permissions] kv` entry in plugin.toml and a grant.
const ownStore = ""

// keyPrefix namespaces the counters: the key of `order.created` is
// `count/order.created`.
const keyPrefix = "count/"

type eventResult = witTypes.Result[witTypes.Unit, warden_plugin_types.PluginError]

// describe turns a store error into text.
func describe(e warden_plugin_store.StoreError) string {
	switch e.Tag() {
	case warden_plugin_store.StoreError_InvalidKey:
		return "invalid key: " + e.InvalidKey()
	case warden_plugin_store.StoreError_ValueTooLarge:
		return "value too large: " + e.ValueTooLarge()
	case warden_plugin_store.StoreError_QuotaExceeded:
		return "quota exceeded: " + e.QuotaExceeded()
	case warden_plugin_store.StoreError_NoSuchStore:
		return "no such store: " + e.NoSuchStore()
	case warden_plugin_store.StoreError_NotANumber:
		return "not a number: " + e.NotANumber()
	default:
		return "store failure: " + e.Internal()
	}
}

func OnEvent(event warden_plugin_types.Event) eventResult {
	count := warden_plugin_store.Increment(ownStore, keyPrefix+event.EventType, 1)
	if count.IsErr() {
		message := fmt.Sprintf("cannot count %s: %s", event.EventType, describe(count.Err()))
		warden_plugin_logging.Log(warden_plugin_types.LogLevel_Error, message)
		return witTypes.Err[witTypes.Unit](warden_plugin_types.MakePluginErrorInternal(message))
	}
	warden_plugin_logging.Log(warden_plugin_types.LogLevel_Info, fmt.Sprintf(
		"%s #%d from %s at %d (%d bytes)",
		event.EventType, count.Ok(), event.Source, event.Timestamp, len(event.Payload)))
	return witTypes.Ok[witTypes.Unit, warden_plugin_types.PluginError](witTypes.Unit{})
}

func SupportedEvents() []string {
	return []string{"order.*"}
}
