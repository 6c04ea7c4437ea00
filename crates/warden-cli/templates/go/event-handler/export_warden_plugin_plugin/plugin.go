// Package export_warden_plugin_plugin is the plugin's identity and lifecycle
// (the exported `warden:plugin/plugin` interface).
package export_warden_plugin_plugin

import (
	"wit_component/warden_plugin_logging"
	"wit_component/warden_plugin_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

const (
	name    = "{{name}}"
	version = "0.1.0"
)

type pluginResult = witTypes.Result[witTypes.Unit, warden_plugin_types.PluginError]

func GetMetadata() warden_plugin_types.PluginMetadata {
	return warden_plugin_types.PluginMetadata{
		Name:        name,
		Version:     version,
		Description: "{{description}}",
		Author:      "you",
	}
}

// Initialize gets the plugin's [config] table; config.GetConfig(key) from
// "wit_component/warden_plugin_config" reads one value at any time.
// Returning an error fails the load.
func Initialize(config []warden_plugin_types.KeyValue) pluginResult {
	warden_plugin_logging.Log(warden_plugin_types.LogLevel_Info, name+" ready")
	return witTypes.Ok[witTypes.Unit, warden_plugin_types.PluginError](witTypes.Unit{})
}

func Shutdown() pluginResult {
	return witTypes.Ok[witTypes.Unit, warden_plugin_types.PluginError](witTypes.Unit{})
}

func GetStatus() warden_plugin_types.PluginStatus {
	return warden_plugin_types.PluginStatus_Ready
}
