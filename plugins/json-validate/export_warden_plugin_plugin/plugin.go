// Package export_warden_plugin_plugin implements the plugin's identity and
// lifecycle (the exported `warden:plugin/plugin` interface).
package export_warden_plugin_plugin

import (
	"wit_component/warden_plugin_logging"
	"wit_component/warden_plugin_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

type pluginResult = witTypes.Result[witTypes.Unit, warden_plugin_types.PluginError]

func GetMetadata() warden_plugin_types.PluginMetadata {
	return warden_plugin_types.PluginMetadata{
		Name:        "json-validate",
		Version:     "0.1.0",
		Description: "Validates JSON objects against a small JSON-Schema-like schema.",
		Author:      "Warden examples",
	}
}

// Initialize does not parse the configured schema: a bad or missing one is
// reported to each caller as invalid-input, and an option can replace it.
func Initialize(config []warden_plugin_types.KeyValue) pluginResult {
	source := "no schema configured; calls must pass option `schema`"
	for _, kv := range config {
		if kv.Key == "schema" {
			source = "schema configured"
		}
	}
	warden_plugin_logging.Log(warden_plugin_types.LogLevel_Info, "json-validate ready: "+source)
	return witTypes.Ok[witTypes.Unit, warden_plugin_types.PluginError](witTypes.Unit{})
}

func Shutdown() pluginResult {
	return witTypes.Ok[witTypes.Unit, warden_plugin_types.PluginError](witTypes.Unit{})
}

func GetStatus() warden_plugin_types.PluginStatus {
	return warden_plugin_types.PluginStatus_Ready
}
