// Package export_warden_plugin_processing counts bytes, lines and words of
// the input (the exported `warden:plugin/processing` interface).
package export_warden_plugin_processing

import (
	"strconv"
	"unicode/utf8"

	"wit_component/warden_plugin_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// isSpace reports whether b separates words: space, \t, \n, \v, \f, \r.
func isSpace(b byte) bool {
	return b == ' ' || (b >= 0x09 && b <= 0x0d)
}

// count returns the number of bytes, newlines (0x0A) and words of data.
func count(data []byte) (bytes, lines, words int) {
	inWord := false
	for _, b := range data {
		if b == '\n' {
			lines++
		}
		if isSpace(b) {
			inWord = false
		} else if !inWord {
			inWord = true
			words++
		}
	}
	return len(data), lines, words
}

func Process(request warden_plugin_types.ProcessRequest) witTypes.Result[warden_plugin_types.ProcessResponse, warden_plugin_types.PluginError] {
	b, l, w := count(request.Input)
	out := `{"bytes":` + strconv.Itoa(b) + `,"lines":` + strconv.Itoa(l) + `,"words":` + strconv.Itoa(w) + `}`
	return witTypes.Ok[warden_plugin_types.ProcessResponse, warden_plugin_types.PluginError](warden_plugin_types.ProcessResponse{
		Output:         []byte(out),
		ContentType:    "application/json",
		ItemsProcessed: uint64(w),
	})
}

func Validate(input []uint8) bool {
	return utf8.Valid(input)
}
