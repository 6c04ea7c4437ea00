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
		Name:        "order-audit-go",
		Version:     "0.1.0",
		Description: "Counts order events per type in the host's key-value store and logs each one.",
		Author:      "Warden examples",
	}
}

func Initialize(config []warden_plugin_types.KeyValue) pluginResult {
	warden_plugin_logging.Log(warden_plugin_types.LogLevel_Info, "order-audit-go ready")
	return witTypes.Ok[witTypes.Unit, warden_plugin_types.PluginError](witTypes.Unit{})
}

func Shutdown() pluginResult {
	return witTypes.Ok[witTypes.Unit, warden_plugin_types.PluginError](witTypes.Unit{})
}

func GetStatus() warden_plugin_types.PluginStatus {
	return warden_plugin_types.PluginStatus_Ready
}
