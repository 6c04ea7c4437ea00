// Package export_warden_plugin_processing validates the input against the
// schema (the exported `warden:plugin/processing` interface). The checking
// itself is in package schema.
package export_warden_plugin_processing

import (
	"bytes"
	"encoding/json"
	"fmt"

	"wit_component/schema"
	"wit_component/warden_plugin_config"
	"wit_component/warden_plugin_logging"
	"wit_component/warden_plugin_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

type processResult = witTypes.Result[warden_plugin_types.ProcessResponse, warden_plugin_types.PluginError]

func log(level warden_plugin_types.LogLevel, format string, args ...any) {
	warden_plugin_logging.Log(level, fmt.Sprintf(format, args...))
}

func invalid(format string, args ...any) processResult {
	message := fmt.Sprintf(format, args...)
	log(warden_plugin_types.LogLevel_Warn, "rejected: %s", message)
	return witTypes.Err[warden_plugin_types.ProcessResponse](warden_plugin_types.MakePluginErrorInvalidInput(message))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// schemaText is the per-call option `schema`, else config key `schema`.
func schemaText(options []warden_plugin_types.KeyValue) (text, source string, ok bool) {
	for _, kv := range options {
		if kv.Key == "schema" {
			return kv.Value, "option", true
		}
	}
	if v := warden_plugin_config.GetConfig("schema"); v.IsSome() {
		return v.Some(), "config", true
	}
	return "", "", false
}

func Process(request warden_plugin_types.ProcessRequest) processResult {
	text, source, ok := schemaText(request.Options)
	if !ok {
		return invalid("no schema: set config key `schema` or pass option `schema` (a JSON object)")
	}
	s, err := schema.Parse([]byte(text))
	if err != nil {
		return invalid("%s (from the %s `schema`)", err, source)
	}
	result, err := s.Validate(request.Input)
	if err != nil {
		return invalid("%s", err)
	}
	verdict := "valid"
	if !result.Valid {
		verdict = plural(len(result.Errors), "error")
	}
	log(warden_plugin_types.LogLevel_Info, "checked %s against the %s schema: %s", plural(result.Checked, "field"), source, verdict)
	return witTypes.Ok[warden_plugin_types.ProcessResponse, warden_plugin_types.PluginError](warden_plugin_types.ProcessResponse{
		Output:         result.JSON(),
		ContentType:    "application/json",
		ItemsProcessed: uint64(result.Checked),
	})
}

// Validate says whether the input is a JSON object (whatever the schema).
func Validate(input []uint8) bool {
	trimmed := bytes.TrimLeft(input, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(input)
}
