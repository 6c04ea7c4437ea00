// Package export_warden_plugin_processing is what the plugin does (the
// exported `warden:plugin/processing` interface).
package export_warden_plugin_processing

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"wit_component/warden_plugin_logging"
	"wit_component/warden_plugin_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

type processResult = witTypes.Result[warden_plugin_types.ProcessResponse, warden_plugin_types.PluginError]

func Process(request warden_plugin_types.ProcessRequest) processResult {
	if !utf8.Valid(request.Input) {
		// An error for the caller (not a crash): the instance keeps serving.
		return witTypes.Err[warden_plugin_types.ProcessResponse](
			warden_plugin_types.MakePluginErrorInvalidInput("the input is not UTF-8 text"))
	}
	text := string(request.Input)
	chars := utf8.RuneCountInString(text)
	warden_plugin_logging.Log(warden_plugin_types.LogLevel_Info, fmt.Sprintf("uppercasing %d characters", chars))
	return witTypes.Ok[warden_plugin_types.ProcessResponse, warden_plugin_types.PluginError](warden_plugin_types.ProcessResponse{
		Output:         []byte(strings.ToUpper(text)),
		ContentType:    "text/plain",
		ItemsProcessed: uint64(chars),
	})
}

func Validate(input []uint8) bool {
	return utf8.Valid(input)
}
