// Package export_warden_plugin_plugin implements the plugin's identity and
// lifecycle (the exported `warden:plugin/plugin` interface).
package export_warden_plugin_plugin

import (
	"wit_component/warden_plugin_logging"
	"wit_component/warden_plugin_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

const (
	name    = "word-count-go"
	version = "0.1.0"
)

func GetMetadata() warden_plugin_types.PluginMetadata {
	return warden_plugin_types.PluginMetadata{
		Name:        name,
		Version:     version,
		Description: "Counts bytes, lines and words of the input (conformance plugin).",
		Author:      "Warden examples",
	}
}

func Initialize(config []warden_plugin_types.KeyValue) witTypes.Result[witTypes.Unit, warden_plugin_types.PluginError] {
	warden_plugin_logging.Log(warden_plugin_types.LogLevel_Info, "word-count ready")
	return witTypes.Ok[witTypes.Unit, warden_plugin_types.PluginError](witTypes.Unit{})
}

func Shutdown() witTypes.Result[witTypes.Unit, warden_plugin_types.PluginError] {
	return witTypes.Ok[witTypes.Unit, warden_plugin_types.PluginError](witTypes.Unit{})
}

func GetStatus() warden_plugin_types.PluginStatus {
	return warden_plugin_types.PluginStatus_Ready
}
