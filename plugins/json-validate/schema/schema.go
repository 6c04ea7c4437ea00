// Package schema is the validator of json-validate: a small subset of JSON
// Schema for the top-level fields of a JSON object. It uses the standard
// library only and knows nothing of WebAssembly, so `go test ./schema/`
// runs natively.
package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"
	"unicode/utf8"
)

// Types are the values of a property's "type".
var Types = []string{"string", "number", "integer", "boolean", "object", "array", "null"}

// Property is what a field must look like. Nil pointers are unset bounds.
type Property struct {
	Type      string
	Minimum   *big.Rat
	Maximum   *big.Rat
	MinLength *int
	MaxLength *int
	Enum      []any // decoded with json.Number for numbers
}

// Schema is a parsed schema.
type Schema struct {
	Required             []string
	Properties           map[string]*Property
	AdditionalProperties bool
}

// Error is one way the document fails the schema.
type Error struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Result is what `process` returns, as JSON.
type Result struct {
	Valid  bool    `json:"valid"`
	Errors []Error `json:"errors"`
	// Checked is the number of fields checked: the document's fields and
	// the required fields it lacks.
	Checked int `json:"-"`
}

// decode parses exactly one JSON value, keeping numbers as json.Number.
func decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("it is empty")
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("there is more after the first JSON value")
	}
	return v, nil
}

// kind is the schema type name of a decoded JSON value ("number" for every
// number; see isInteger).
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func rat(n json.Number) (*big.Rat, bool) {
	return new(big.Rat).SetString(string(n))
}

// Parse reads a schema from JSON text. Errors name the offending keyword.
func Parse(text []byte) (*Schema, error) {
	v, err := decode(text)
	if err != nil {
		return nil, fmt.Errorf("the schema is not valid JSON: %v", err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the schema must be a JSON object, not %s", kind(v))
	}
	s := &Schema{Properties: map[string]*Property{}, AdditionalProperties: true}
	for _, key := range sortedKeys(root) {
		val := root[key]
		switch key {
		case "required":
			list, ok := val.([]any)
			if !ok {
				return nil, fmt.Errorf("schema: `required` must be an array of field names, not %s", kind(val))
			}
			for _, item := range list {
				name, ok := item.(string)
				if !ok {
					return nil, fmt.Errorf("schema: `required` must hold strings, found %s", kind(item))
				}
				s.Required = append(s.Required, name)
			}
		case "properties":
			props, ok := val.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("schema: `properties` must be an object, not %s", kind(val))
			}
			for _, name := range sortedKeys(props) {
				p, err := parseProperty(props[name])
				if err != nil {
					return nil, fmt.Errorf("schema: properties.%s: %v", name, err)
				}
				s.Properties[name] = p
			}
		case "additionalProperties":
			b, ok := val.(bool)
			if !ok {
				return nil, fmt.Errorf("schema: `additionalProperties` must be true or false, not %s", kind(val))
			}
			s.AdditionalProperties = b
		default:
			return nil, fmt.Errorf("schema: unknown keyword `%s` (known: required, properties, additionalProperties)", key)
		}
	}
	return s, nil
}

func parseProperty(v any) (*Property, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be an object, not %s", kind(v))
	}
	p := &Property{}
	length := func(key string, val any) (*int, error) {
		n, ok := val.(json.Number)
		if !ok {
			return nil, fmt.Errorf("`%s` must be a whole number, not %s", key, kind(val))
		}
		i, err := n.Int64()
		if err != nil || i < 0 || i > 1<<31 {
			return nil, fmt.Errorf("`%s` must be a whole number from 0, not %s", key, n)
		}
		l := int(i)
		return &l, nil
	}
	bound := func(key string, val any) (*big.Rat, error) {
		n, ok := val.(json.Number)
		if !ok {
			return nil, fmt.Errorf("`%s` must be a number, not %s", key, kind(val))
		}
		r, ok := rat(n)
		if !ok {
			return nil, fmt.Errorf("`%s` is not a usable number: %s", key, n)
		}
		return r, nil
	}
	var err error
	for _, key := range sortedKeys(obj) {
		val := obj[key]
		switch key {
		case "type":
			t, ok := val.(string)
			if !ok || !contains(Types, t) {
				return nil, fmt.Errorf("`type` must be one of %s, not %s", strings.Join(Types, ", "), compact(val))
			}
			p.Type = t
		case "minimum":
			p.Minimum, err = bound(key, val)
		case "maximum":
			p.Maximum, err = bound(key, val)
		case "minLength":
			p.MinLength, err = length(key, val)
		case "maxLength":
			p.MaxLength, err = length(key, val)
		case "enum":
			list, ok := val.([]any)
			if !ok {
				return nil, fmt.Errorf("`enum` must be an array, not %s", kind(val))
			}
			p.Enum = list
		default:
			return nil, fmt.Errorf("unknown keyword `%s` (known: type, minimum, maximum, minLength, maxLength, enum)", key)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ErrInput is returned by Validate when the document is not a JSON object.
type ErrInput struct{ Message string }

func (e *ErrInput) Error() string { return e.Message }

// Validate checks a JSON document against the schema. A document that is
// not JSON, or not an object, is an *ErrInput.
func (s *Schema) Validate(doc []byte) (*Result, error) {
	v, err := decode(doc)
	if err != nil {
		return nil, &ErrInput{fmt.Sprintf("the input is not valid JSON: %v", err)}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &ErrInput{fmt.Sprintf("the input must be a JSON object, not %s", kind(v))}
	}
	res := &Result{Errors: []Error{}}
	add := func(field, format string, args ...any) {
		res.Errors = append(res.Errors, Error{Path: Pointer(field), Message: fmt.Sprintf(format, args...)})
	}
	missing := map[string]bool{}
	for _, name := range s.Required {
		if _, ok := obj[name]; !ok && !missing[name] {
			missing[name] = true
			add(name, "is required")
			res.Checked++
		}
	}
	for _, name := range sortedKeys(obj) {
		res.Checked++
		p, ok := s.Properties[name]
		if !ok {
			if !s.AdditionalProperties {
				add(name, "is not allowed (additionalProperties is false)")
			}
			continue
		}
		for _, msg := range p.check(obj[name]) {
			add(name, "%s", msg)
		}
	}
	sort.Slice(res.Errors, func(i, j int) bool {
		a, b := res.Errors[i], res.Errors[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Message < b.Message
	})
	res.Valid = len(res.Errors) == 0
	return res, nil
}

// check returns what is wrong with value v of a field, in a fixed order.
func (p *Property) check(v any) []string {
	var msgs []string
	got := kind(v)
	if p.Type != "" {
		ok := got == p.Type
		if p.Type == "number" {
			ok = got == "number"
		} else if p.Type == "integer" {
			ok = got == "number" && isInteger(v.(json.Number))
		}
		if !ok {
			if got == "number" && isInteger(v.(json.Number)) {
				got = "integer"
			}
			// A value of the wrong type is not checked further.
			return []string{fmt.Sprintf("must be of type %s, got %s", p.Type, got)}
		}
	}
	if n, ok := v.(json.Number); ok {
		if r, ok := rat(n); ok {
			if p.Minimum != nil && r.Cmp(p.Minimum) < 0 {
				msgs = append(msgs, fmt.Sprintf("must be at least %s (minimum), got %s", ratString(p.Minimum), n))
			}
			if p.Maximum != nil && r.Cmp(p.Maximum) > 0 {
				msgs = append(msgs, fmt.Sprintf("must be at most %s (maximum), got %s", ratString(p.Maximum), n))
			}
		}
	}
	if str, ok := v.(string); ok {
		l := utf8.RuneCountInString(str)
		if p.MinLength != nil && l < *p.MinLength {
			msgs = append(msgs, fmt.Sprintf("must be at least %d characters long (minLength), got %d", *p.MinLength, l))
		}
		if p.MaxLength != nil && l > *p.MaxLength {
			msgs = append(msgs, fmt.Sprintf("must be at most %d characters long (maxLength), got %d", *p.MaxLength, l))
		}
	}
	if p.Enum != nil {
		found := false
		for _, e := range p.Enum {
			if equal(v, e) {
				found = true
				break
			}
		}
		if !found {
			msgs = append(msgs, fmt.Sprintf("must be one of %s, got %s", compact(p.Enum), compact(v)))
		}
	}
	return msgs
}

func isInteger(n json.Number) bool {
	r, ok := rat(n)
	return ok && r.IsInt()
}

// ratString writes a bound as a short decimal (exact for integers).
func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return fmt.Sprint(f)
}

// equal compares two decoded JSON values; numbers by value (1 == 1.0).
func equal(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		rx, okx := rat(x)
		ry, oky := rat(y)
		if !okx || !oky {
			return string(x) == string(y)
		}
		return rx.Cmp(ry) == 0
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equal(xv, yv) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// compact is v as JSON text, keys sorted, no HTML escaping.
func compact(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// Pointer is the JSON Pointer (RFC 6901) of a top-level field.
func Pointer(field string) string {
	return "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(field)
}

// JSON is the result as compact JSON text: {"valid":…,"errors":[…]}.
func (r *Result) JSON() []byte {
	return []byte(compact(r))
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
