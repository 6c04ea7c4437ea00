package schema

import (
	"errors"
	"testing"
)

const people = `{
  "required": ["name", "age"],
  "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 5},
    "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "role": {"enum": ["admin", "user", 1.5]},
    "tags": {"type": "array"},
    "a/b~c": {"type": "null"}
  },
  "additionalProperties": false
}`

func run(t *testing.T, schema, doc string) string {
	t.Helper()
	s, err := Parse([]byte(schema))
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	r, err := s.Validate([]byte(doc))
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	return string(r.JSON())
}

func TestValidDocument(t *testing.T) {
	got := run(t, people, `{"name": "Ann", "age": 30.0, "role": 1.50, "tags": [], "a/b~c": null}`)
	if want := `{"valid":true,"errors":[]}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// Paths sort by bytes: "/age" before "/a~1b~0c".
func TestErrorsAreSortedByPathThenMessage(t *testing.T) {
	got := run(t, people, `{"name": "Annabel", "age": -1, "role": "root", "extra": true, "a/b~c": 1, "tags": {}}`)
	want := `{"valid":false,"errors":[` +
		`{"path":"/age","message":"must be at least 0 (minimum), got -1"},` +
		`{"path":"/a~1b~0c","message":"must be of type null, got integer"},` +
		`{"path":"/extra","message":"is not allowed (additionalProperties is false)"},` +
		`{"path":"/name","message":"must be at most 5 characters long (maxLength), got 7"},` +
		`{"path":"/role","message":"must be one of [\"admin\",\"user\",1.5], got \"root\""},` +
		`{"path":"/tags","message":"must be of type array, got object"}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestRequiredAndTypes(t *testing.T) {
	got := run(t, people, `{"age": 1.5}`)
	want := `{"valid":false,"errors":[` +
		`{"path":"/age","message":"must be of type integer, got number"},` +
		`{"path":"/name","message":"is required"}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Characters, not bytes: "héllo" is 5 long.
	if got := run(t, people, `{"name": "héllo", "age": 1e2}`); got != `{"valid":true,"errors":[]}` {
		t.Errorf("got %s", got)
	}
}

func TestCheckedCount(t *testing.T) {
	s, _ := Parse([]byte(`{"required": ["a", "b", "b"]}`))
	r, err := s.Validate([]byte(`{"a": 1, "c": 2, "d": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Checked != 4 || len(r.Errors) != 1 {
		t.Errorf("checked %d, errors %v", r.Checked, r.Errors)
	}
}

func TestBadSchemas(t *testing.T) {
	for schema, want := range map[string]string{
		`[]`:                                     "the schema must be a JSON object, not array",
		`{"required": "a"}`:                      "schema: `required` must be an array of field names, not string",
		`{"properties": {"a": {"type": "int"}}}`: "schema: properties.a: `type` must be one of string, number, integer, boolean, object, array, null, not \"int\"",
		`{"properties": {"a": {"minLength": -1}}}`: "schema: properties.a: `minLength` must be a whole number from 0, not -1",
		`{"propertes": {}}`:                        "schema: unknown keyword `propertes` (known: required, properties, additionalProperties)",
		`{"additionalProperties": "no"}`:           "schema: `additionalProperties` must be true or false, not string",
		`{`:                                        "the schema is not valid JSON: unexpected EOF",
	} {
		_, err := Parse([]byte(schema))
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", schema, err, want)
		}
	}
}

func TestBadInput(t *testing.T) {
	s, _ := Parse([]byte(`{}`))
	for doc, want := range map[string]string{
		`{"a":`: "the input is not valid JSON: unexpected EOF",
		`[1]`:   "the input must be a JSON object, not array",
		`{} {}`: "the input is not valid JSON: there is more after the first JSON value",
		``:      "the input is not valid JSON: it is empty",
	} {
		_, err := s.Validate([]byte(doc))
		var e *ErrInput
		if !errors.As(err, &e) || e.Message != want {
			t.Errorf("%q: got %v, want %s", doc, err, want)
		}
	}
}
