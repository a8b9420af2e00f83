#!/usr/bin/env python3
"""JSON Schema structured-output fixtures: schemas, documents, and whether Zebra's grammar must accept each.

    python3 scripts/make_schema_fixtures.py > Tests/GrammarTests/Fixtures/schemas.json
    python3 scripts/make_schema_fixtures.py Tests/GrammarTests/Fixtures/schemas.json

Needs jsonschema 4.26.0 and rfc3339-validator 0.1.4 (without it jsonschema silently skips the time and
date-time formats): pip install jsonschema==4.26.0 rfc3339-validator==0.1.4. Deterministic: a fixed seed,
ordered iteration only; runs in a few seconds.

For every schema in CASES it generates valid documents (seeded random generation from the schema, boundary
lengths / counts / integers included) and mutations of them (wrong type, missing or undeclared keys, keys
out of order, out-of-range numbers, strings and arrays too long or short, enum values off by one, pattern
and format violations, truncation, trailing garbage, whitespace between tokens, invalid JSON, ...). Each
document is labelled `accept` = valid for Python's jsonschema (Draft 2020-12 with its format checker) AND in
Zebra's canonical generated form:
  - compact JSON: no whitespace outside strings, nothing before or after the value;
  - with `properties`: only declared keys, each once, in the order of `properties` (required ones
    present); without `properties`: any keys, values per additionalProperties (false: only {});
  - strings: escapes \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX; documents are written with json.dumps
    escaping (ensure_ascii=False: non-ASCII raw UTF-8); other escape spellings (\\u00e9, \\/) are accepted
    in strings without enum/const/pattern/format and in the keys of objects without `properties`;
    declared property names only as json.dumps spells them; lengths count code points;
  - numbers: -?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?; `integer` only the integer form (no
    fraction, no exponent); `number` with minimum/maximum (integer bounds >= 0) no exponent;
  - enum / const: exactly the value's compact json.dumps spelling (objects in the order written);
  - formats date, time, date-time, uuid, email as defined in ZEBRA_FORMATS below.
Documents on which the two definitions could disagree for reasons that are implementation choices rather
than the rules above (regex flavour, format edge cases, surrogate-pair escapes, -0 under bounds, escape
spellings inside enum/pattern/format strings, duplicate keys in maps, overlapping oneOf branches) are
dropped rather than labelled. Also writes "unsupported": schemas that must be refused, with the keyword
the error has to name.

Output: {"generator", "jsonschema", "rfc3339-validator", "seed", "cases": [{"name", "schema", "documents":
[{"text", "accept", "why"}]}], "unsupported": [{"name", "schema", "keyword"}]}. `text` is the exact document
(UTF-8); `why` says how the document was made (in brackets) and why it is rejected: "not JSON: ...",
"schema: <jsonschema's message>" or "non-canonical: ...".
"""
import copy
import decimal
import json
import random
import re
import string
import sys
from importlib import metadata
from urllib.parse import quote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

JSONSCHEMA_VERSION = "4.26.0"
RFC3339_VERSION = "0.1.4"
SEED = 20260314
ROOT_URI = "urn:zebra:fixture"
MAX_DEPTH = 3          # generation nesting before recursion is cut off
ACCEPT_MAX = 8         # generated valid documents kept per schema
ACCEPT_EXTRA_MAX = 3   # accepted documents from mutations (escape spellings, number spellings, ...)
REJECT_MAX = 12        # rejected documents kept per schema

ANNOTATIONS = frozenset(["title", "description", "default", "examples", "$schema", "$id", "$comment",
                         "deprecated", "readOnly", "writeOnly"])
CONTAINERS = frozenset(["$defs", "definitions"])
SUPPORTED = frozenset(["type", "properties", "required", "additionalProperties", "enum", "const", "anyOf",
                       "oneOf", "allOf", "$ref", "items", "prefixItems", "minItems", "maxItems", "minLength",
                       "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
                       "exclusiveMaximum"]) | ANNOTATIONS | CONTAINERS
BOUND_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")

# ---------------------------------------------------------------------------------------------------------
# The schemas. Keep them inside the supported subset (checked by lint()).

CASES = [
    ("any_value", {}),
    ("object_catch_all", {"type": "object"}),
    ("object_additional_true", {"type": "object", "additionalProperties": True, "description": "any object"}),
    ("array_any", {"type": "array"}),
    ("string_plain", {"type": "string"}),
    ("string_length_2_5", {"type": "string", "minLength": 2, "maxLength": 5}),
    ("string_length_exactly_3", {"type": "string", "minLength": 3, "maxLength": 3}),
    ("string_max_1", {"type": "string", "maxLength": 1}),
    ("string_min_4", {"type": "string", "minLength": 4}),
    ("integer_plain", {"type": "integer"}),
    ("integer_7_to_1234", {"type": "integer", "minimum": 7, "maximum": 1234}),
    ("integer_neg150_to_neg3", {"type": "integer", "minimum": -150, "maximum": -3}),
    ("integer_exclusive_neg10_100", {"type": "integer", "exclusiveMinimum": -10, "exclusiveMaximum": 100}),
    ("integer_min_99", {"type": "integer", "minimum": 99}),
    ("integer_negative_exclusive_max_0", {"type": "integer", "exclusiveMaximum": 0}),
    ("integer_port", {"type": "integer", "exclusiveMinimum": 0, "maximum": 65535, "title": "port"}),
    ("number_plain", {"type": "number"}),
    ("number_0_to_100", {"type": "number", "minimum": 0, "maximum": 100}),
    ("number_min_10", {"type": "number", "minimum": 10}),
    ("number_max_50", {"type": "number", "maximum": 50}),
    ("number_probability", {"type": "number", "minimum": 0, "maximum": 1}),
    ("boolean", {"type": "boolean"}),
    ("null", {"type": "null"}),
    ("type_string_or_null", {"type": ["string", "null"], "maxLength": 4}),
    ("type_integer_or_boolean", {"type": ["integer", "boolean"], "minimum": 0, "maximum": 9}),
    ("enum_strings", {"type": "string", "enum": ["red", "green", "blue", "dark red"]}),
    ("enum_numbers", {"enum": [0, 1, 2.5, -3, 100, 1234567]}),
    ("enum_mixed", {"enum": ["a", 1, None, True, {"k": "v", "n": [1]}, [1, "two"], 2.5]}),
    ("enum_escapes_unicode", {"type": "string",
                              "enum": ["café", "say \"hi\"", "back\\slash", "tab\there", "日本語", "😀", "a/b"]}),
    ("const_string", {"const": "fixed value"}),
    ("const_object", {"const": {"kind": "point", "xy": [1, -2], "ok": True, "tag": None, "name": "é"}}),
    ("const_in_properties", {"type": "object", "properties": {
        "version": {"const": 2}, "kind": {"const": "user"}, "flags": {"const": [True, False]}},
        "required": ["version", "kind"], "additionalProperties": False}),
    ("object_person", {"type": "object", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "email": {"type": "string", "format": "email"},
        "nickname": {"type": ["string", "null"]}},
        "required": ["name", "age"]}),
    ("object_closed_all_optional", {"type": "object", "properties": {
        "a": {"type": "integer"}, "b": {"type": "string", "maxLength": 3}, "c": {"type": "boolean"},
        "d": {"type": "null"}}, "additionalProperties": False}),
    ("object_open_properties", {"type": "object", "properties": {
        "id": {"type": "integer", "minimum": 1}, "label": {"type": "string"}}, "required": ["id"]}),
    ("object_nested", {"type": "object", "properties": {
        "user": {"type": "object", "properties": {
            "id": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 100000},
            "address": {"type": "object", "properties": {
                "street": {"type": "string", "maxLength": 12}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                "required": ["street"], "additionalProperties": False}},
            "required": ["id", "address"], "additionalProperties": False},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 6}, "maxItems": 3},
        "score": {"type": "number"}},
        "required": ["user", "tags"], "additionalProperties": False}),
    ("object_unusual_property_names", {"type": "object", "properties": {
        "naïve": {"type": "boolean"}, "with space": {"type": "integer"}, "say \"hi\"": {"type": "string"},
        "日本": {"type": "null"}, "a/b~c": {"type": "integer", "minimum": 0, "maximum": 3}},
        "required": ["say \"hi\""], "additionalProperties": False}),
    ("map_integers", {"type": "object", "additionalProperties": {"type": "integer"}}),
    ("map_short_strings", {"type": "object", "additionalProperties": {"type": "string", "maxLength": 4}}),
    ("map_of_objects", {"type": "object", "additionalProperties": {
        "type": "object", "properties": {"x": {"type": "integer", "minimum": 0, "maximum": 9}, "y": {"type": "boolean"}},
        "required": ["x"], "additionalProperties": False}}),
    ("map_empty_only", {"type": "object", "additionalProperties": False}),
    ("array_integers", {"type": "array", "items": {"type": "integer"}}),
    ("array_short_strings_1_to_3", {"type": "array", "items": {"type": "string", "maxLength": 3},
                                    "minItems": 1, "maxItems": 3}),
    ("array_exactly_2_booleans", {"type": "array", "items": {"type": "boolean"}, "minItems": 2, "maxItems": 2}),
    ("array_nested", {"type": "array", "items": {"type": "array", "items": {"type": "integer", "minimum": -5,
                                                                            "maximum": 5}, "maxItems": 3},
                      "minItems": 1, "maxItems": 4}),
    ("array_or_null", {"type": ["array", "null"], "items": {"type": "integer", "minimum": 0}, "maxItems": 3}),
    ("tuple_closed", {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}],
                      "items": False, "minItems": 3}),
    ("tuple_then_numbers", {"type": "array", "prefixItems": [{"const": "point"}, {"enum": ["2d", "3d"]}],
                            "items": {"type": "number"}, "minItems": 2, "maxItems": 5}),
    ("tuple_prefix_optional", {"type": "array", "prefixItems": [{"type": "integer", "minimum": 0, "maximum": 9},
                                                                {"type": ["string", "null"], "maxLength": 2}],
                               "items": False}),
    ("tuple_open_rest", {"type": "array", "prefixItems": [{"type": "boolean"}], "minItems": 1, "maxItems": 4}),
    ("anyof_types", {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "integer", "minimum": 0},
                               {"type": "null"}, {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}]}),
    ("anyof_objects_by_ref", {"anyOf": [{"$ref": "#/definitions/Circle"}, {"$ref": "#/definitions/Rect"}],
                              "definitions": {
        "Circle": {"type": "object", "properties": {"radius": {"type": "number", "minimum": 0}},
                   "required": ["radius"], "additionalProperties": False},
        "Rect": {"type": "object", "properties": {"w": {"type": "integer", "minimum": 1, "maximum": 100},
                                                  "h": {"type": "integer", "minimum": 1, "maximum": 100}},
                 "required": ["w", "h"], "additionalProperties": False}}}),
    ("oneof_disjoint_types", {"oneOf": [{"type": "string", "maxLength": 3}, {"type": "integer", "minimum": 0},
                                        {"type": "array", "items": {"type": "boolean"}}]}),
    ("oneof_tagged_union", {"oneOf": [
        {"type": "object", "properties": {"pet": {"const": "cat"}, "lives": {"type": "integer", "minimum": 0,
                                                                              "maximum": 9}},
         "required": ["pet", "lives"], "additionalProperties": False},
        {"type": "object", "properties": {"pet": {"const": "dog"}, "breed": {"type": "string", "minLength": 1,
                                                                              "maxLength": 10}},
         "required": ["pet"], "additionalProperties": False}]}),
    ("oneof_in_property", {"type": "object", "properties": {
        "value": {"oneOf": [{"type": "integer", "exclusiveMinimum": -1000, "exclusiveMaximum": 1000},
                            {"type": "string", "maxLength": 3}, {"type": "null"}]}},
        "required": ["value"], "additionalProperties": False}),
    ("allof_single_ref", {"$defs": {"Point": {"type": "object", "properties": {
        "x": {"type": "integer", "minimum": -100, "maximum": 100}, "y": {"type": "integer", "minimum": -100,
                                                                        "maximum": 100}},
        "required": ["x", "y"], "additionalProperties": False}}, "allOf": [{"$ref": "#/$defs/Point"}]}),
    ("allof_single_inline", {"allOf": [{"type": "string", "pattern": "^[a-z]+$"}]}),
    ("allof_in_property", {"type": "object", "properties": {
        "level": {"allOf": [{"type": "integer", "minimum": 1, "maximum": 5}]},
        "note": {"allOf": [{"type": ["string", "null"]}]}}, "required": ["level"], "additionalProperties": False}),
    ("ref_linked_list", {"$defs": {"Node": {"type": "object", "properties": {
        "value": {"type": "integer", "minimum": 0, "maximum": 999},
        "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
        "required": ["value", "next"], "additionalProperties": False}}, "$ref": "#/$defs/Node"}),
    ("ref_tree_definitions", {"definitions": {"Tree": {"type": "object", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 6},
        "children": {"type": "array", "items": {"$ref": "#/definitions/Tree"}, "maxItems": 2}},
        "required": ["name", "children"], "additionalProperties": False}}, "$ref": "#/definitions/Tree"}),
    ("ref_root_expression", {"type": "object", "properties": {
        "op": {"enum": ["+", "*", "neg"]},
        "args": {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"$ref": "#"}]},
                 "minItems": 1, "maxItems": 3}},
        "required": ["op", "args"], "additionalProperties": False}),
    ("ref_with_annotations", {"$defs": {"Id": {"type": "string", "format": "uuid", "description": "an id"}},
                              "type": "object", "properties": {
                                  "id": {"$ref": "#/$defs/Id", "description": "a $ref beside an annotation"},
                                  "parent": {"anyOf": [{"$ref": "#/$defs/Id"}, {"type": "null"}]}},
                              "required": ["id", "parent"], "additionalProperties": False}),
    ("pattern_lowercase_word", {"type": "string", "pattern": "^[a-z]+$"}),
    ("pattern_phone", {"type": "string", "pattern": "^\\d{3}-\\d{4}$"}),
    ("pattern_unanchored", {"type": "string", "pattern": "ab+c"}),
    ("pattern_groups_alternation", {"type": "string", "pattern": "^(?:foo|bar)+(\\.txt|\\.md)?$"}),
    ("pattern_code", {"type": "string", "pattern": "^[A-Z]{2,3}-[0-9a-f]{4,}$"}),
    ("pattern_negated_dot_escapes", {"type": "string", "pattern": "^[^aeiou]{2}.\\S\\w*\\s?\\W$"}),
    ("pattern_end_anchored", {"type": "string", "pattern": "\\.(?:json|ya?ml)$"}),
    ("pattern_quantifiers", {"type": "string", "pattern": "^x{2}y{1,}z{0,2}\\D?$"}),
    ("format_date", {"type": "string", "format": "date"}),
    ("format_time", {"type": "string", "format": "time"}),
    ("format_date_time", {"type": "string", "format": "date-time"}),
    ("format_uuid", {"type": "string", "format": "uuid"}),
    ("format_email", {"type": "string", "format": "email"}),
    ("formats_in_object", {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"}, "day": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date-time"}, "opens": {"type": "string", "format": "time"},
        "contact": {"type": "string", "format": "email"}},
        "required": ["id", "day", "at"], "additionalProperties": False}),
    ("annotations_everywhere", {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://example.com/schemas/annotated.json",
        "title": "Annotated", "description": "every annotation keyword", "$comment": "ignored",
        "examples": [{"name": "bob"}], "default": {"name": "x"}, "type": "object", "properties": {
            "name": {"type": "string", "title": "Name", "default": "x", "examples": ["alice"], "minLength": 1,
                     "maxLength": 8},
            "legacy": {"type": "integer", "deprecated": True, "readOnly": True, "minimum": 0, "maximum": 10},
            "secret": {"type": "string", "writeOnly": True, "pattern": "^[0-9a-f]{6}$", "$comment": "hex"}},
        "required": ["name"], "additionalProperties": False}),
    ("tool_call_weather", {"type": "object", "properties": {
        "name": {"const": "get_weather"},
        "arguments": {"type": "object", "properties": {
            "city": {"type": "string", "minLength": 1, "maxLength": 30},
            "unit": {"$ref": "#/definitions/Unit"},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "when": {"type": "string", "format": "date"}},
            "required": ["city"], "additionalProperties": False}},
        "required": ["name", "arguments"], "additionalProperties": False,
        "definitions": {"Unit": {"enum": ["celsius", "fahrenheit"]}}}),
    ("ref_root_nested_lists", {"anyOf": [{"type": "string", "maxLength": 4}, {"type": "integer"},
                                         {"type": "array", "items": {"$ref": "#"}, "maxItems": 3}]}),
    ("anyof_array_or_map", {"anyOf": [
        {"type": "array", "items": {"type": "string", "maxLength": 2}, "maxItems": 3},
        {"type": "object", "additionalProperties": {"type": ["integer", "null"]}}]}),
]

UNSUPPORTED = [
    ("if_then_else", {"type": "object", "properties": {"a": {"type": "integer"}},
                      "if": {"properties": {"a": {"const": 1}}}, "then": {"required": ["a"]}, "else": {}}, "if"),
    ("not", {"not": {"type": "string"}}, "not"),
    ("not_in_property", {"type": "object", "properties": {"x": {"not": {"type": "null"}}}}, "not"),
    ("patternProperties", {"type": "object", "patternProperties": {"^x-": {"type": "string"}}},
     "patternProperties"),
    ("dependentSchemas", {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                          "dependentSchemas": {"a": {"required": ["b"]}}}, "dependentSchemas"),
    ("dependentRequired", {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                           "dependentRequired": {"a": ["b"]}}, "dependentRequired"),
    ("unevaluatedProperties", {"type": "object", "properties": {"a": {"type": "integer"}},
                               "unevaluatedProperties": False}, "unevaluatedProperties"),
    ("contains", {"type": "array", "contains": {"type": "integer"}}, "contains"),
    ("uniqueItems", {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "uniqueItems"),
    ("multipleOf", {"type": "integer", "multipleOf": 5}, "multipleOf"),
    ("multipleOf_in_items", {"type": "array", "items": {"type": "number", "multipleOf": 0.5}}, "multipleOf"),
    ("minProperties", {"type": "object", "minProperties": 1}, "minProperties"),
    ("maxProperties", {"type": "object", "additionalProperties": {"type": "integer"}, "maxProperties": 3},
     "maxProperties"),
    ("propertyNames", {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}}, "propertyNames"),
    ("allOf_two", {"allOf": [{"type": "integer"}, {"minimum": 0}]}, "allOf"),
    ("allOf_two_in_property", {"$defs": {"A": {"type": "object", "properties": {"a": {"type": "integer"}}},
                                         "B": {"type": "object", "properties": {"b": {"type": "string"}}}},
                               "type": "object", "properties": {
                                   "p": {"allOf": [{"$ref": "#/$defs/A"}, {"$ref": "#/$defs/B"}]}}}, "allOf"),
    ("ref_remote", {"$ref": "https://example.com/schemas/address.json"}, "$ref"),
    ("ref_remote_in_property", {"type": "object", "properties": {
        "addr": {"$ref": "https://example.com/schemas/address.json#/$defs/Street"}}}, "$ref"),
    ("format_uri", {"type": "string", "format": "uri"}, "format"),
    ("format_uri_in_items", {"type": "array", "items": {"type": "string", "format": "uri"}}, "format"),
    ("number_minimum_fraction", {"type": "number", "minimum": 0.5}, "minimum"),
    ("number_maximum_fraction", {"type": "number", "minimum": 0, "maximum": 2.5}, "maximum"),
    ("number_minimum_negative", {"type": "number", "minimum": -5, "maximum": 5}, "minimum"),
    ("pattern_backreference", {"type": "string", "pattern": "^(a+)b\\1$"}, "pattern"),
    ("pattern_lookahead", {"type": "string", "pattern": "^(?=.*[0-9])[a-z0-9]{8,}$"}, "pattern"),
    ("pattern_negative_lookahead", {"type": "string", "pattern": "^(?!admin$)[a-z]+$"}, "pattern"),
]

# ---------------------------------------------------------------------------------------------------------
# Zebra's format definitions (the grammar's), compared with jsonschema's checkers.

_DATE = "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_HOUR = "(?:[01][0-9]|2[0-3])"
_TIME = _HOUR + ":[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?(?:Z|[+-]" + _HOUR + ":[0-5][0-9])"
ZEBRA_FORMATS = {
    "date": re.compile(_DATE),
    "time": re.compile(_TIME),
    "date-time": re.compile(_DATE + "T" + _TIME),
    "uuid": re.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    "email": re.compile("[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+"),
}


def zebra_format(name, s):
    return ZEBRA_FORMATS[name].fullmatch(s) is not None


# ---------------------------------------------------------------------------------------------------------
# JSON helpers

def cj(v):
    """Zebra's canonical spelling of a value."""
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


class Raw:
    """A value written verbatim (a mutation's spelling)."""
    def __init__(self, text):
        self.text = text


class Pairs:
    """An object written from an explicit key list (duplicates allowed); keys may be Raw."""
    def __init__(self, pairs):
        self.pairs = pairs


def ser(v):
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, Pairs):
        return "{" + ",".join((k.text if isinstance(k, Raw) else cj(k)) + ":" + ser(x) for k, x in v.pairs) + "}"
    if isinstance(v, dict):
        return "{" + ",".join(cj(k) + ":" + ser(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(ser(x) for x in v) + "]"
    return cj(v)


def json_type(v):
    if v is None:
        return "null"
    if type(v) is bool:
        return "boolean"
    if type(v) is int:
        return "integer"
    if type(v) is float:
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def replace_at(v, path, fn):
    if not path:
        return fn(v)
    head, rest = path[0], path[1:]
    if isinstance(v, dict):
        return {k: (replace_at(x, rest, fn) if k == head else x) for k, x in v.items()}
    return [replace_at(x, rest, fn) if i == head else x for i, x in enumerate(v)]


def iter_values(v):
    yield v
    if isinstance(v, dict):
        for x in v.values():
            yield from iter_values(x)
    elif isinstance(v, list):
        for x in v:
            yield from iter_values(x)


def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


class NonCanonical(Exception):
    pass


class Ambiguous(Exception):
    pass


class Node:
    __slots__ = ("kind", "start", "end", "value", "items")

    def __init__(self, kind, start, end, value, items=None):
        self.kind, self.start, self.end, self.value, self.items = kind, start, end, value, items


NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
INT_FORM = re.compile(r"-?(?:0|[1-9][0-9]*)")
WS = " \t\n\r"
SCAN = json.decoder.scanstring


def strict_parse(t):
    """Parses text that json.loads accepted, refusing whitespace outside strings."""
    node, end = _parse(t, 0)
    if end != len(t):
        raise NonCanonical("whitespace outside strings")
    return node


def _parse(t, i):
    if i >= len(t) or t[i] in WS:
        raise NonCanonical("whitespace outside strings")
    c = t[i]
    if c == "{":
        j, items = i + 1, []
        if t[j] in WS:
            raise NonCanonical("whitespace outside strings")
        if t[j] == "}":
            return Node("object", i, j + 1, {}, []), j + 1
        while True:
            if t[j] in WS:
                raise NonCanonical("whitespace outside strings")
            key, kend = SCAN(t, j + 1, True)
            keyraw = t[j:kend]
            if t[kend] in WS:
                raise NonCanonical("whitespace outside strings")
            child, j = _parse(t, kend + 1)
            items.append((key, keyraw, child))
            if t[j] in WS:
                raise NonCanonical("whitespace outside strings")
            if t[j] == ",":
                j += 1
                continue
            break
        value = {}
        for k, _, ch in items:
            value[k] = ch.value
        return Node("object", i, j + 1, value, items), j + 1
    if c == "[":
        j, items = i + 1, []
        if t[j] in WS:
            raise NonCanonical("whitespace outside strings")
        if t[j] == "]":
            return Node("array", i, j + 1, [], []), j + 1
        while True:
            child, j = _parse(t, j)
            items.append(child)
            if t[j] in WS:
                raise NonCanonical("whitespace outside strings")
            if t[j] == ",":
                j += 1
                continue
            break
        return Node("array", i, j + 1, [x.value for x in items], items), j + 1
    if c == '"':
        s, e = SCAN(t, i + 1, True)
        return Node("string", i, e, s), e
    m = NUMBER.match(t, i)
    if m:
        return Node("number", i, m.end(), json.loads(m.group())), m.end()
    for lit, val in (("true", True), ("false", False), ("null", None)):
        if t.startswith(lit, i):
            return Node("literal", i, i + len(lit), val), i + len(lit)
    raise AssertionError("strict_parse on text json.loads accepted: " + t)


def esc_token(tok):
    return quote(str(tok).replace("~", "~0").replace("/", "~1"), safe="")


def types_of(s):
    t = s.get("type")
    return None if t is None else ([t] if isinstance(t, str) else list(t))


def is_generic(s):
    return s is True or (isinstance(s, dict) and all(k in ANNOTATIONS or k in CONTAINERS for k in s))


def has_ref(s):
    if isinstance(s, dict):
        return "$ref" in s or any(has_ref(v) for k, v in s.items() if k not in CONTAINERS)
    if isinstance(s, list):
        return any(has_ref(v) for v in s)
    return False


SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
PATTERN_UNSAFE = re.compile("[\x00-\x1f]")   # control characters (escaped) in pattern/format strings
NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f]')

# ---------------------------------------------------------------------------------------------------------
# The oracle: jsonschema's verdict plus Zebra's canonical form.


class Oracle:
    def __init__(self, schema):
        self.root = schema
        resource = DRAFT202012.create_resource(schema)
        registry = Registry().with_resource(ROOT_URI, resource)
        if isinstance(schema, dict) and "$id" in schema:
            registry = registry.with_resource(schema["$id"], resource)
        self.registry = registry
        # The draft's own checker: a bare FormatChecker() checks "time" with the draft-3 definition.
        self.fc = Draft202012Validator.FORMAT_CHECKER
        self.validators = {}
        self.nodes = {}
        self.patterns, self.formats, self.oneofs = [], [], []
        self.has_length = False
        self._index("", schema)

    def _index(self, ptr, s):
        self.nodes[ptr] = s
        if not isinstance(s, dict):
            return
        if "pattern" in s and s["pattern"] not in self.patterns:
            self.patterns.append(s["pattern"])
        if "format" in s and s["format"] not in self.formats:
            self.formats.append(s["format"])
        if "oneOf" in s:
            self.oneofs.append(ptr)
        if "minLength" in s or "maxLength" in s:
            self.has_length = True
        for k in ("properties", "$defs", "definitions"):
            for name, sub in s.get(k, {}).items():
                self._index(f"{ptr}/{k}/{esc_token(name)}", sub)
        for k in ("additionalProperties", "items"):
            if k in s:
                self._index(f"{ptr}/{k}", s[k])
        for k in ("prefixItems", "anyOf", "oneOf", "allOf"):
            for i, sub in enumerate(s.get(k, [])):
                self._index(f"{ptr}/{k}/{i}", sub)

    def at(self, ptr):
        return self.nodes[ptr]

    @staticmethod
    def ref_ptr(ref):
        assert ref == "#" or ref.startswith("#/"), ref
        return ref[1:]

    def resolve(self, ptr):
        s = self.at(ptr)
        while isinstance(s, dict) and "$ref" in s:
            ptr = self.ref_ptr(s["$ref"])
            s = self.at(ptr)
        return ptr, s

    def validator(self, ptr):
        v = self.validators.get(ptr)
        if v is None:
            v = Draft202012Validator({"$ref": ROOT_URI + "#" + ptr}, registry=self.registry,
                                     format_checker=self.fc)
            self.validators[ptr] = v
        return v

    def valid(self, ptr, value):
        return self.validator(ptr).is_valid(value)

    def raw(self, node):
        return self.text[node.start:node.end]

    # -- the verdict

    def label(self, text):
        """(accept, why); raises Ambiguous where the label would rest on an implementation choice."""
        try:
            value = json.loads(text, parse_constant=reject_constant)
        except ValueError as e:
            return False, "not JSON: " + (e.msg if isinstance(e, json.JSONDecodeError) else str(e))
        self.semantics(value, text)
        if not self.valid("", value):
            err = best_match(self.validator("").iter_errors(value))
            msg = err.message if err is not None else "invalid"
            if len(msg) > 110:
                msg = msg[:107] + "..."
            return False, "schema: " + msg
        self.text = text
        try:
            node = strict_parse(text)
        except NonCanonical as e:
            return False, "non-canonical: " + str(e)
        reason = self.zok("", node)
        if reason is not None:
            return False, reason
        return True, "valid"

    def semantics(self, value, text):
        """Differences between jsonschema's and Zebra's meaning that no label should rest on."""
        if SURROGATE_ESCAPE.search(text):
            raise Ambiguous("surrogate-pair escape (Zebra writes characters beyond the BMP as UTF-8)")
        for v in iter_values(value):
            if not isinstance(v, str):
                continue
            for p in self.patterns:
                if "\n" in v:
                    raise Ambiguous("newline under a pattern ($ before a final newline)")
                if bool(re.search(p, v)) != bool(re.search(p, v, re.ASCII)):
                    raise Ambiguous("regex flavour (Unicode vs ASCII classes)")
                if re.search(r"\\[DWS]|\[\^[^\]]*\\[dws]", p) and any(ord(c) > 127 for c in v):
                    raise Ambiguous("non-ASCII under a negated class (Zebra keeps those ASCII)")
            for f in self.formats:
                if self.fc.conforms(v, f) != zebra_format(f, v):
                    raise Ambiguous(f"format {f} edge case")
                if f in ("time", "date-time") and re.search(r"\.[0-9]{10}", v) or f == "email" and re.search(
                        r"[^@.]{64}|@.*[^.]{64}|(\..*){9}", v):
                    raise Ambiguous("format beyond a length an implementation may cap")
        for optr in self.oneofs:
            n = len(self.at(optr)["oneOf"])
            for v in iter_values(value):
                if sum(self.valid(f"{optr}/oneOf/{i}", v) for i in range(n)) > 1:
                    raise Ambiguous("oneOf alternatives overlap")

    def zok(self, ptr, node):
        """None when the (schema-valid) node is in canonical form for the schema at ptr, else the reason."""
        ptr, s = self.resolve(ptr)
        if s is False:
            return "schema: false"
        if is_generic(s):
            return self.generic(node)
        for kw in ("anyOf", "oneOf"):
            if kw in s:
                ok, reasons = [], []
                for i in range(len(s[kw])):
                    bp = f"{ptr}/{kw}/{i}"
                    if not self.valid(bp, node.value):
                        continue
                    r = self.zok(bp, node)
                    (reasons.append(r) if r else ok.append(i))
                if kw == "oneOf" and len(ok) > 1:
                    raise Ambiguous("oneOf alternatives overlap")
                return None if ok else (reasons[0] if reasons else "schema: no alternative")
        if "allOf" in s:
            return self.zok(ptr + "/allOf/0", node)
        if "const" in s:
            return self.literal([s["const"]], node)
        if "enum" in s:
            return self.literal(s["enum"], node)
        k = node.kind
        if k == "object":
            if "properties" in s:
                props = list(s["properties"])
                seen, last = set(), -1
                for key, keyraw, child in node.items:
                    if key not in s["properties"]:
                        return f"non-canonical: undeclared property {cj(key)}"
                    if keyraw != cj(key):
                        raise Ambiguous("escape spelling in a declared property name")
                    if key in seen:
                        return f"non-canonical: duplicate property {cj(key)}"
                    idx = props.index(key)
                    if idx < last:
                        return f"non-canonical: property {cj(key)} out of schema order"
                    seen.add(key)
                    last = idx
                    r = self.zok(f"{ptr}/properties/{esc_token(key)}", child)
                    if r:
                        return r
                return None
            ap = s.get("additionalProperties", True)
            keys = [x[0] for x in node.items]
            if len(set(keys)) != len(keys):
                raise Ambiguous("duplicate key in a map")
            if ap is True:
                return self.generic(node)
            for _, _, child in node.items:
                r = self.zok(ptr + "/additionalProperties", child)
                if r:
                    return r
            return None
        if k == "array":
            prefix = s.get("prefixItems", [])
            for i, child in enumerate(node.items):
                if i < len(prefix):
                    sub = f"{ptr}/prefixItems/{i}"
                elif "items" in s:
                    sub = f"{ptr}/items"
                else:
                    r = self.generic(child)
                    if r:
                        return r
                    continue
                r = self.zok(sub, child)
                if r:
                    return r
            return None
        if k == "string":
            raw = self.raw(node)
            if "pattern" in s or "format" in s:
                if raw != cj(node.value):
                    raise Ambiguous("escape spelling inside a pattern/format string")
                if PATTERN_UNSAFE.search(node.value):
                    raise Ambiguous("control character inside a pattern/format string")
            return None
        if k == "number":
            return self.number(s, node)
        return None

    def number(self, s, node):
        raw = self.raw(node)
        types = types_of(s) or ["number"]
        bounded = any(b in s for b in BOUND_KEYS)
        if INT_FORM.fullmatch(raw):
            if bounded and raw.startswith("-0"):
                raise Ambiguous("-0 under bounds")
            return None
        if "number" not in types:
            return "non-canonical: integer written with a fraction or exponent"
        if not bounded:
            return None
        if "e" in raw or "E" in raw:
            return "non-canonical: exponent in a number with minimum/maximum"
        if raw.startswith("-") and node.value == 0:
            raise Ambiguous("-0.0 under bounds")
        exact = decimal.Decimal(raw)
        if "minimum" in s and exact < s["minimum"]:
            raise Ambiguous("float rounding reaches the minimum")
        if "maximum" in s and exact > s["maximum"]:
            raise Ambiguous("float rounding reaches the maximum")
        return None

    def literal(self, values, node):
        raw = self.raw(node)
        spellings = [cj(v) for v in values]
        if raw in spellings:
            return None
        if self.strings_canonical(node) in spellings:
            raise Ambiguous("escape spelling inside an enum/const string")
        return "non-canonical: spelling differs from the enum/const value's " + cj(self.closest(values, node))

    def closest(self, values, node):
        for v in values:
            try:
                if Draft202012Validator({"const": v}).is_valid(node.value):
                    return v
            except Exception:
                pass
        return values[0]

    def strings_canonical(self, node):
        if node.kind == "object":
            return "{" + ",".join(cj(k) + ":" + self.strings_canonical(c) for k, _, c in node.items) + "}"
        if node.kind == "array":
            return "[" + ",".join(self.strings_canonical(c) for c in node.items) + "]"
        if node.kind == "string":
            return cj(node.value)
        return self.raw(node)

    def generic(self, node):
        if node.kind == "object":
            keys = [x[0] for x in node.items]
            if len(set(keys)) != len(keys):
                raise Ambiguous("duplicate key in a generic object")
            for _, _, c in node.items:
                self.generic(c)
        elif node.kind == "array":
            for c in node.items:
                self.generic(c)
        return None

    # -- where each part of a value sits in the schema (for targeted mutations)

    def walk(self, ptr, v, path, out):
        if ptr is None:
            out.append((path, None, v))
            if isinstance(v, dict):
                for k, x in v.items():
                    self.walk(None, x, path + (k,), out)
            elif isinstance(v, list):
                for i, x in enumerate(v):
                    self.walk(None, x, path + (i,), out)
            return
        ptr, s = self.resolve(ptr)
        if is_generic(s):
            return self.walk(None, v, path, out)
        for kw in ("anyOf", "oneOf"):
            if kw in s:
                for i in range(len(s[kw])):
                    if self.valid(f"{ptr}/{kw}/{i}", v):
                        return self.walk(f"{ptr}/{kw}/{i}", v, path, out)
                out.append((path, ptr, v))
                return
        if "allOf" in s:
            return self.walk(ptr + "/allOf/0", v, path, out)
        out.append((path, ptr, v))
        if "const" in s or "enum" in s:
            return
        if isinstance(v, dict):
            for k, x in v.items():
                if "properties" in s:
                    if k in s["properties"]:
                        self.walk(f"{ptr}/properties/{esc_token(k)}", x, path + (k,), out)
                elif isinstance(s.get("additionalProperties", True), dict):
                    self.walk(ptr + "/additionalProperties", x, path + (k,), out)
                else:
                    self.walk(None, x, path + (k,), out)
        elif isinstance(v, list):
            prefix = s.get("prefixItems", [])
            for i, x in enumerate(v):
                if i < len(prefix):
                    self.walk(f"{ptr}/prefixItems/{i}", x, path + (i,), out)
                elif isinstance(s.get("items"), dict):
                    self.walk(ptr + "/items", x, path + (i,), out)
                elif "items" not in s:
                    self.walk(None, x, path + (i,), out)


# ---------------------------------------------------------------------------------------------------------
# Generation of valid values

ALNUM = string.ascii_letters + string.digits
SPECIAL = [" ", "-", "_", ".", "/", "'", '"', "\\", "\n", "\t", "\r", "\b", "\f", "\u0001", "\u001f", "\u007f",
           "é", "ß", "Ω", "ж", "日", "本", "€", "😀", "𝄞", "\u0301", "\u2028", "\u00a0", "<", "&", "{", "]", ":", ","]
KEYS = ["a", "b", "id", "x1", "name", "é", "日本", "with space", 'quo"te', "back\\slash", "tab\tkey", "😀", "",
        "/path", "Z", "k"]
FLOATS = [0.5, -2.25, 3.0, 1e-07, 6.02e+23, -0.001, 123.456, 1.5e+300, -7.0, 0.1]
DOT_POOL = [c for c in string.printable[:94] if c not in '"\\'] + ["é", "日", "😀", "ß", " "]
ASCII_POOL = [c for c in string.printable[:94] if c not in '"\\'] + [" "]


class Gen:
    def __init__(self, oracle, rng):
        self.o, self.rng = oracle, rng

    def char(self):
        return self.rng.choice(ALNUM) if self.rng.random() < 0.7 else self.rng.choice(SPECIAL)

    def text(self, n):
        return "".join(self.char() for _ in range(n))

    def value(self, ptr, depth=0, mode="rand"):
        r = self.rng
        ptr, s = self.o.resolve(ptr)
        if is_generic(s):
            return self.any(depth, mode)
        for kw in ("anyOf", "oneOf"):
            if kw in s:
                idx = list(range(len(s[kw])))
                if depth >= MAX_DEPTH:
                    term = [i for i in idx if not has_ref(s[kw][i])]
                    idx = term or idx
                return self.value(f"{ptr}/{kw}/{r.choice(idx)}", depth, mode)
        if "allOf" in s:
            return self.value(ptr + "/allOf/0", depth, mode)
        if "const" in s:
            return copy.deepcopy(s["const"])
        if "enum" in s:
            return copy.deepcopy(r.choice(s["enum"]))
        t = r.choice(types_of(s))
        if t == "null":
            return None
        if t == "boolean":
            return r.random() < 0.5
        if t == "integer":
            return self.integer(s, mode)
        if t == "number":
            return self.number(s, mode)
        if t == "string":
            return self.string(s, mode)
        if t == "array":
            return self.array(ptr, s, depth, mode)
        return self.object(ptr, s, depth, mode)

    def any(self, depth, mode):
        r = self.rng
        kinds = ["null", "bool", "int", "float", "str", "str"]
        if depth < MAX_DEPTH:
            kinds += ["arr", "obj", "obj"]
        k = r.choice(kinds)
        if k == "null":
            return None
        if k == "bool":
            return r.random() < 0.5
        if k == "int":
            return r.choice([0, 1, -1, 42, -273, 10 ** 12, r.randint(-10 ** 6, 10 ** 6)])
        if k == "float":
            return r.choice(FLOATS)
        if k == "str":
            return self.text(r.randint(0, 8))
        if k == "arr":
            return [self.any(depth + 1, mode) for _ in range(r.randint(0, 3))]
        return {key: self.any(depth + 1, mode) for key in r.sample(KEYS, r.randint(0, 3))}

    @staticmethod
    def int_bounds(s):
        lo = s.get("minimum", s["exclusiveMinimum"] + 1 if "exclusiveMinimum" in s else None)
        hi = s.get("maximum", s["exclusiveMaximum"] - 1 if "exclusiveMaximum" in s else None)
        return lo, hi

    def integer(self, s, mode):
        r = self.rng
        lo, hi = self.int_bounds(s)
        if mode == "min" and lo is not None:
            return lo
        if mode == "max" and hi is not None:
            return hi
        a = lo if lo is not None else (hi if hi is not None else 0) - 10 ** 7
        b = hi if hi is not None else (lo if lo is not None else 0) + 10 ** 7
        special = [lo, hi, a + 1, b - 1, 0, 1, -1]
        for k in range(1, 8):
            special += [10 ** k - 1, 10 ** k, -(10 ** k) + 1, -(10 ** k)]
        special = [x for x in special if x is not None and a <= x <= b]
        if r.random() < 0.5 and special:
            return r.choice(special)
        return r.randint(a, b)

    def number(self, s, mode):
        r = self.rng
        bounded = any(k in s for k in BOUND_KEYS)
        if not bounded:
            if r.random() < 0.5:
                return r.choice(FLOATS)
            return r.choice([0, 17, -4, r.randint(-10 ** 9, 10 ** 9),
                             round(r.uniform(-1000, 1000), r.randint(1, 4))])
        lo, hi = s.get("minimum"), s.get("maximum")
        if mode == "min" and lo is not None:
            return lo
        if mode == "max" and hi is not None:
            return hi
        a = lo if lo is not None else hi - 200
        b = hi if hi is not None else lo + 1000
        pick = r.random()
        if pick < 0.25:
            return r.choice([a, b, float(a), float(b)])
        if pick < 0.45:
            return r.randint(a, b)
        frac = r.choice(['5', '25', '125', '1', '75', '999', '05'])
        if lo is None and pick < 0.6:
            return float(f"-0.{frac}")
        i = r.randint(a, b - 1)
        return float(f"{i}.{frac}") if i >= 0 else float(f"-{-(i + 1)}.{frac}")

    def string(self, s, mode):
        r = self.rng
        if "format" in s:
            return self.format(s["format"], mode)
        if "pattern" in s:
            return gen_pattern(s["pattern"], r)
        lo = s.get("minLength", 0)
        hi = s.get("maxLength", lo + 10)
        n = lo if mode == "min" else hi if mode == "max" else r.choice([lo, hi, r.randint(lo, hi), r.randint(lo, hi)])
        return self.text(n)

    def format(self, f, mode):
        r = self.rng
        if f == "date":
            if mode in ("min", "max"):
                return "0001-01-01" if mode == "min" else "9999-12-31"
            return f"{r.randint(1000, 2999):04d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
        if f == "time":
            if mode in ("min", "max"):
                return "00:00:00Z" if mode == "min" else "23:59:59.999999999+23:59"
            t = f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"
            if r.random() < 0.4:
                t += "." + "".join(r.choice(string.digits) for _ in range(r.randint(1, 6)))
            if r.random() < 0.4:
                return t + "Z"
            return t + f"{r.choice('+-')}{r.randint(0, 14):02d}:{r.choice(['00', '30', '45'])}"
        if f == "date-time":
            return self.format("date", mode) + "T" + self.format("time", mode)
        if f == "uuid":
            h = f"{r.getrandbits(128):032x}"
            case = r.choice(["lower", "upper", "mixed"])
            if case == "upper":
                h = h.upper()
            elif case == "mixed":
                h = "".join(c.upper() if r.random() < 0.5 else c for c in h)
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        if f == "email":
            local = r.choice(string.ascii_letters) + "".join(
                r.choice(string.ascii_letters + string.digits + "._%+-") for _ in range(r.randint(0, 9)))
            labels = ["".join(r.choice(string.ascii_lowercase + string.digits + "-") for _ in range(r.randint(1, 8)))
                      for _ in range(r.randint(1, 2))]
            return local + "@" + ".".join(labels + [r.choice(["com", "org", "io", "example"])])
        raise AssertionError(f)

    def array(self, ptr, s, depth, mode):
        r = self.rng
        prefix = s.get("prefixItems", [])
        items = s.get("items", True)
        lo = s.get("minItems", 0)
        hi = s.get("maxItems")
        if items is False:
            hi = len(prefix) if hi is None else min(hi, len(prefix))
        if hi is None:
            hi = max(lo, len(prefix)) + 3
        if depth >= MAX_DEPTH:
            hi = lo
        n = lo if mode == "min" else hi if mode == "max" else r.randint(lo, hi)
        out = []
        for i in range(n):
            if i < len(prefix):
                out.append(self.value(f"{ptr}/prefixItems/{i}", depth + 1, mode))
            elif "items" in s:
                out.append(self.value(ptr + "/items", depth + 1, mode))
            else:
                out.append(self.any(depth + 1, mode))
        return out

    def object(self, ptr, s, depth, mode):
        r = self.rng
        if "properties" in s:
            req = s.get("required", [])
            out = {}
            for k in s["properties"]:
                if k not in req:
                    if mode == "min" or depth >= MAX_DEPTH:
                        continue
                    if mode == "rand" and r.random() < 0.4:
                        continue
                out[k] = self.value(f"{ptr}/properties/{esc_token(k)}", depth + 1, mode)
            return out
        ap = s.get("additionalProperties", True)
        if ap is False:
            return {}
        n = 0 if mode == "min" else 3 if mode == "max" else r.randint(0, 3)
        if depth >= MAX_DEPTH:
            n = min(n, 1)
        out = {}
        for key in r.sample(KEYS, n):
            out[key] = self.any(depth + 1, mode) if ap is True else self.value(ptr + "/additionalProperties",
                                                                              depth + 1, mode)
        return out


# -- patterns: a parser and generator for the supported regex subset

class RegexGen:
    def __init__(self, pattern):
        self.p, self.i = pattern, 0
        self.start = pattern.startswith("^")
        self.end = pattern.endswith("$") and not pattern.endswith("\\$")
        body = pattern[1 if self.start else 0:len(pattern) - (1 if self.end else 0)]
        self.p, self.i = body, 0
        self.tree = self.alt()
        assert self.i == len(self.p), pattern

    def alt(self):
        seqs = [self.seq()]
        while self.i < len(self.p) and self.p[self.i] == "|":
            self.i += 1
            seqs.append(self.seq())
        return ("alt", seqs)

    def seq(self):
        items = []
        while self.i < len(self.p) and self.p[self.i] not in "|)":
            atom = self.atom()
            items.append(self.quant(atom))
        return ("seq", items)

    def quant(self, atom):
        p = self.p
        if self.i < len(p) and p[self.i] in "*+?":
            q = p[self.i]
            self.i += 1
            return ("rep", atom, {"*": 0, "+": 1, "?": 0}[q], {"*": None, "+": None, "?": 1}[q])
        m = re.compile(r"\{(\d+)(,(\d*))?\}").match(p, self.i)
        if m:
            self.i = m.end()
            a = int(m.group(1))
            b = a if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
            return ("rep", atom, a, b)
        return atom

    def atom(self):
        p = self.p
        c = p[self.i]
        if c == "(":
            self.i += 1
            if p.startswith("?:", self.i):
                self.i += 2
            inner = self.alt()
            assert p[self.i] == ")"
            self.i += 1
            return inner
        if c == "[":
            self.i += 1
            neg = p[self.i] == "^"
            if neg:
                self.i += 1
            parts = []
            while p[self.i] != "]":
                if p[self.i] == "\\":
                    parts.append(self.escape())
                elif self.i + 2 < len(p) and p[self.i + 1] == "-" and p[self.i + 2] != "]":
                    parts.append(("range", p[self.i], p[self.i + 2]))
                    self.i += 3
                else:
                    parts.append(("lit", p[self.i]))
                    self.i += 1
            self.i += 1
            return ("class", neg, parts)
        if c == ".":
            self.i += 1
            return ("dot",)
        if c == "\\":
            return self.escape()
        self.i += 1
        return ("lit", c)

    def escape(self):
        c = self.p[self.i + 1]
        self.i += 2
        if c in "dwsDWS":
            return ("esc", c)
        return ("lit", c)

    @staticmethod
    def in_class(ch, part):
        kind = part[0]
        if kind == "lit":
            return ch == part[1]
        if kind == "range":
            return part[1] <= ch <= part[2]
        return re.fullmatch("\\" + part[1], ch, re.ASCII) is not None

    def gen(self, node, r):
        kind = node[0]
        if kind == "alt":
            return self.gen(r.choice(node[1]), r)
        if kind == "seq":
            return "".join(self.gen(x, r) for x in node[1])
        if kind == "rep":
            hi = node[3] if node[3] is not None else node[2] + 3
            return "".join(self.gen(node[1], r) for _ in range(r.randint(node[2], hi)))
        if kind == "lit":
            return node[1]
        if kind == "dot":
            return r.choice(DOT_POOL)
        if kind == "esc":
            pool = {"d": string.digits, "w": ALNUM + "_", "s": " "}.get(node[1])
            if pool is None:
                pool = [c for c in ASCII_POOL if not re.fullmatch("\\" + node[1].lower(), c, re.ASCII)]
            return r.choice(pool)
        if kind == "class":
            neg, parts = node[1], node[2]
            pool = DOT_POOL if neg else [chr(c) for c in range(32, 127)] + ["é", "日"]
            cands = [c for c in pool if any(self.in_class(c, p) for p in parts) != neg]
            return r.choice(cands)
        raise AssertionError(node)


def gen_pattern(pattern, r):
    g = RegexGen(pattern)
    s = g.gen(g.tree, r)
    if not g.start and r.random() < 0.6:
        s = "".join(r.choice(DOT_POOL) for _ in range(r.randint(1, 3))) + s
    if not g.end and r.random() < 0.6:
        s += "".join(r.choice(DOT_POOL) for _ in range(r.randint(1, 3)))
    return s


# ---------------------------------------------------------------------------------------------------------
# Mutations: each returns a text (or None when it does not apply to the chosen base)

def escape_variant(s, r):
    """s with one character spelled as a different (standard) JSON escape."""
    cands = [i for i, c in enumerate(s) if ord(c) <= 0xFFFF and not 0xD800 <= ord(c) <= 0xDFFF]
    if not cands:
        return None
    i = r.choice(cands)
    c = s[i]
    if c == "/":
        esc = "\\/"
    else:
        esc = "\\u%04x" % ord(c)
        if r.random() < 0.5:
            esc = "\\u" + esc[2:].upper()
    return '"' + cj(s[:i])[1:-1] + esc + cj(s[i + 1:])[1:-1] + '"'


def perturb(v, r):
    """A value next to v (an enum/const member changed a little)."""
    if isinstance(v, str):
        if not v:
            return "a"
        i = r.randrange(len(v))
        return v[:i] + chr(ord(v[i]) + 1) + v[i + 1:] if r.random() < 0.7 else v[:i] + v[i + 1:]
    if type(v) is bool:
        return not v
    if type(v) is int:
        return v + r.choice([1, -1])
    if type(v) is float:
        return v + 0.5
    if v is None:
        return "null"
    if isinstance(v, list):
        return v[:-1] + [perturb(v[-1], r)] if v else [0]
    if isinstance(v, dict):
        if not v:
            return {"k": 1}
        k = r.choice(list(v))
        return {kk: (perturb(x, r) if kk == k else x) for kk, x in v.items()}
    return v


FORMAT_BREAKS = {
    "date": [lambda s: s[:5] + "13" + s[7:], lambda s: s[:5] + "00" + s[7:], lambda s: s[:8] + "32",
             lambda s: s[:8] + "00", lambda s: s.replace("-", "/"), lambda s: s[1:], lambda s: s + "T10:00:00Z",
             lambda s: s[:4] + s[5:]],
    "time": [lambda s: "24" + s[2:], lambda s: s[:3] + "60" + s[5:], lambda s: s[:8],
             lambda s: s[:5] + s[8:], lambda s: s[:8] + ".Z", lambda s: s[:8] + "+24:00", lambda s: " " + s,
             lambda s: s[:8] + "+0100"],
    "date-time": [lambda s: s[:10] + " " + s[11:], lambda s: s[:5] + "13" + s[7:], lambda s: s[:10],
                  lambda s: s[:11] + "25" + s[13:], lambda s: s[:19], lambda s: s[:8] + "32" + s[10:]],
    "uuid": [lambda s: s[:-1] + "g", lambda s: s[:-1], lambda s: s.replace("-", ""), lambda s: "{" + s + "}",
             lambda s: s[:8] + s[9:13] + "-" + s[13:], lambda s: s + "0", lambda s: s.replace("-", "_")],
    "email": [lambda s: s.replace("@", ""), lambda s: s.replace("@", " at "), lambda s: "@" + s.split("@")[1],
              lambda s: s.split("@")[0] + "@", lambda s: s.replace("@", "@@")],
}


class Mutator:
    def __init__(self, oracle, rng, gen):
        self.o, self.r, self.g = oracle, rng, gen

    def entries(self, value):
        out = []
        self.o.walk("", value, (), out)
        return out

    def pick(self, entries, pred):
        c = [e for e in entries if pred(None if e[1] is None else self.o.at(e[1]), e[2])]
        return self.r.choice(c) if c else None

    def at_path(self, value, path, new):
        return ser(replace_at(value, path, lambda _: new))

    # schema-directed

    def wrong_type(self, value, entries):
        path, ptr, v = self.r.choice(entries)
        alts = [a for a in [0, "x", True, None, [], {}, 2.5, "0", [0], {"a": 1}] if json_type(a) != json_type(v)]
        return self.at_path(value, path, self.r.choice(alts))

    def missing_required(self, value, entries):
        e = self.pick(entries, lambda s, v: isinstance(v, dict) and s and any(k in v for k in s.get("required", [])))
        if not e:
            return None
        path, ptr, v = e
        gone = self.r.choice([k for k in self.o.at(ptr)["required"] if k in v])
        return self.at_path(value, path, {k: x for k, x in v.items() if k != gone})

    def undeclared_property(self, value, entries):
        e = self.pick(entries, lambda s, v: isinstance(v, dict) and s and (
            "properties" in s or s.get("additionalProperties") is False))
        if not e:
            return None
        path, ptr, v = e
        items = list(v.items())
        items.insert(self.r.randint(0, len(items)), (self.r.choice(["extra", "zz", "Name", "id2"]), 1))
        return self.at_path(value, path, dict(items))

    def properties_out_of_order(self, value, entries):
        e = self.pick(entries, lambda s, v: isinstance(v, dict) and s and "properties" in s and len(v) >= 2)
        if not e:
            return None
        path, ptr, v = e
        items = list(v.items())
        i, j = sorted(self.r.sample(range(len(items)), 2))
        items[i], items[j] = items[j], items[i]
        return self.at_path(value, path, dict(items))

    def duplicate_property(self, value, entries):
        e = self.pick(entries, lambda s, v: isinstance(v, dict) and s and "properties" in s and v)
        if not e:
            return None
        path, ptr, v = e
        items = list(v.items())
        k, x = self.r.choice(items)
        return self.at_path(value, path, Pairs(items + [(k, x)]))

    def number_out_of_range(self, value, entries):
        e = self.pick(entries, lambda s, v: s and json_type(v) in ("integer", "number")
                      and any(b in s for b in BOUND_KEYS))
        if not e:
            return None
        path, ptr, v = e
        s = self.o.at(ptr)
        lo, hi = Gen.int_bounds(s)
        near, far = [], []
        if lo is not None:
            near.append(lo - 1)
            far += [lo - 10, -abs(lo) - 1000]
        if hi is not None:
            near.append(hi + 1)
            far += [hi * 10 + 7 if hi > 0 else hi + 100, hi + 9]
        c = near + far
        if "number" in (types_of(s) or []):
            if lo is not None:
                c.insert(1, lo - 0.5)
            if hi is not None:
                c.insert(1, hi + 0.25)
        # the nearest violations first, then farther ones
        self.out_of_range_calls = getattr(self, "out_of_range_calls", -1) + 1
        return self.at_path(value, path, c[self.out_of_range_calls % len(c)])

    def integer_with_fraction(self, value, entries):
        e = self.pick(entries, lambda s, v: s and json_type(v) == "integer" and "integer" in (types_of(s) or [])
                      and "number" not in (types_of(s) or []))
        if not e:
            return None
        path, ptr, v = e
        return self.at_path(value, path, Raw(f"{v}.0" if self.r.random() < 0.7 else f"{v}.00"))

    def integer_with_exponent(self, value, entries):
        e = self.pick(entries, lambda s, v: s and json_type(v) == "integer" and "integer" in (types_of(s) or [])
                      and "number" not in (types_of(s) or []))
        if not e:
            return None
        path, ptr, v = e
        if v % 10 == 0 and v != 0:
            t = f"{v // 10}e1"
        else:
            t = self.r.choice([f"{v}e0", f"{v}E+0", f"{v}e-0"])
        return self.at_path(value, path, Raw(t))

    def exponent_in_bounded_number(self, value, entries):
        e = self.pick(entries, lambda s, v: s and json_type(v) in ("integer", "number")
                      and "number" in (types_of(s) or []) and ("minimum" in s or "maximum" in s))
        if not e:
            return None
        path, ptr, v = e
        return self.at_path(value, path, Raw(f"{cj(v)}e0" if self.r.random() < 0.5 else f"{cj(v)}E+00"))

    def number_respelled(self, value, entries):
        e = self.pick(entries, lambda s, v: json_type(v) in ("integer", "number") and (
            s is None or ("number" in (types_of(s) or []) and not any(b in s for b in BOUND_KEYS)
                          and "enum" not in s and "const" not in s)))
        if not e:
            return None
        path, ptr, v = e
        t = cj(v)
        if "e" in t:
            m, x = t.split("e")
            t = self.r.choice([f"{m}E{int(x)}", f"{m}e{x}" if "." in m else f"{m}.0e{x}"])
        elif "." in t:
            t = self.r.choice([t + "0", t + "e0", t + "E+1" if False else t + "00"])
        else:
            t = self.r.choice([t + ".0", t + "e0", t + "E+0", t + ".000"])
        return self.at_path(value, path, Raw(t))

    def string_too_long(self, value, entries):
        e = self.pick(entries, lambda s, v: s and isinstance(v, str) and "maxLength" in s)
        if not e:
            return None
        path, ptr, v = e
        n = self.o.at(ptr)["maxLength"] + 1 - len(v)
        return self.at_path(value, path, v + self.g.text(max(n, 1)))

    def string_too_short(self, value, entries):
        e = self.pick(entries, lambda s, v: s and isinstance(v, str) and s.get("minLength", 0) > 0)
        if not e:
            return None
        path, ptr, v = e
        return self.at_path(value, path, v[:self.o.at(ptr)["minLength"] - 1])

    def array_too_long(self, value, entries):
        e = self.pick(entries, lambda s, v: s and isinstance(v, list) and (
            "maxItems" in s or s.get("items") is False))
        if not e:
            return None
        path, ptr, v = e
        s = self.o.at(ptr)
        limit = s.get("maxItems", len(s.get("prefixItems", [])))
        if s.get("items") is False:
            limit = min(limit, len(s.get("prefixItems", [])))
        extra = [copy.deepcopy(v[-1]) if v else 1 for _ in range(limit + 1 - len(v))] or [1]
        return self.at_path(value, path, v + extra)

    def array_too_short(self, value, entries):
        e = self.pick(entries, lambda s, v: s and isinstance(v, list) and s.get("minItems", 0) > 0)
        if not e:
            return None
        path, ptr, v = e
        return self.at_path(value, path, v[:self.o.at(ptr)["minItems"] - 1])

    def enum_off_by_one(self, value, entries):
        e = self.pick(entries, lambda s, v: s and ("enum" in s or "const" in s))
        if not e:
            return None
        path, ptr, v = e
        return self.at_path(value, path, perturb(v, self.r))

    def enum_respelled(self, value, entries):
        e = self.pick(entries, lambda s, v: s and ("enum" in s or "const" in s) and (
            isinstance(v, (dict, list)) or json_type(v) in ("integer", "number")))
        if not e:
            return None
        path, ptr, v = e
        if isinstance(v, dict) and len(v) >= 2:
            items = list(v.items())
            items.reverse()
            return self.at_path(value, path, dict(items))
        if json_type(v) == "integer":
            return self.at_path(value, path, Raw(f"{v}.0"))
        if json_type(v) == "number":
            return self.at_path(value, path, Raw(cj(v) + "0"))
        return None

    def pattern_violated(self, value, entries):
        e = self.pick(entries, lambda s, v: s and isinstance(v, str) and "pattern" in s)
        if not e:
            return None
        path, ptr, v = e
        r = self.r
        op = r.randrange(5)
        junk = r.choice(["!", "Z", "9", "a", "_", " ", "é", "-", "."])
        if op == 0 and v:
            i = r.randrange(len(v))
            v = v[:i] + junk + v[i + 1:]
        elif op == 1 and v:
            i = r.randrange(len(v))
            v = v[:i] + v[i + 1:]
        elif op == 2:
            v = junk + v
        elif op == 3:
            v = v + junk
        else:
            v = ""
        return self.at_path(value, path, v)

    def format_violated(self, value, entries):
        e = self.pick(entries, lambda s, v: s and isinstance(v, str) and "format" in s)
        if not e:
            return None
        path, ptr, v = e
        return self.at_path(value, path, self.r.choice(FORMAT_BREAKS[self.o.at(ptr)["format"]])(v))

    def escape_spelling(self, value, entries):
        e = self.pick(entries, lambda s, v: isinstance(v, str) and v)
        if not e:
            return None
        path, ptr, v = e
        t = escape_variant(v, self.r)
        return None if t is None else self.at_path(value, path, Raw(t))

    def key_escape_spelling(self, value, entries):
        e = self.pick(entries, lambda s, v: isinstance(v, dict) and any(v) and (s is None or "properties" not in s))
        if not e:
            return None
        path, ptr, v = e
        k = self.r.choice([k for k in v if k])
        t = escape_variant(k, self.r)
        if t is None:
            return None
        return self.at_path(value, path, Pairs([(Raw(t) if kk == k else kk, x) for kk, x in v.items()]))

    def raw_control_character(self, value, entries):
        e = self.pick(entries, lambda s, v: isinstance(v, str))
        if not e:
            return None
        path, ptr, v = e
        t = cj(v)
        return self.at_path(value, path, Raw(t[:-1] + self.r.choice(["\n", "\t", "\u0001"]) + '"'))

    def invalid_escape(self, value, entries):
        e = self.pick(entries, lambda s, v: isinstance(v, str))
        if not e:
            return None
        path, ptr, v = e
        t = cj(v)
        return self.at_path(value, path, Raw(t[:-1] + self.r.choice(["\\x41", "\\'", "\\u12", "\\a", "\\"]) + '"'))

    def single_quotes(self, value, entries):
        e = self.pick(entries, lambda s, v: isinstance(v, str) and "'" not in v and "\\" not in v)
        if not e:
            return None
        path, ptr, v = e
        return self.at_path(value, path, Raw("'" + v + "'"))

    def bad_number(self, value, entries):
        e = self.pick(entries, lambda s, v: json_type(v) in ("integer", "number"))
        if not e:
            return None
        path, ptr, v = e
        t = cj(v)
        bad = [("-0" + t[1:]) if t.startswith("-") else "0" + t, "+" + t, "NaN", "Infinity", "-Infinity",
               t + ".", "." + t.lstrip("-") if "." not in t and "e" not in t else t + "e", "0x1F"]
        return self.at_path(value, path, Raw(self.r.choice(bad)))

    def trailing_comma(self, value, entries):
        e = self.pick(entries, lambda s, v: isinstance(v, (list, dict)) and v)
        if not e:
            return None
        path, ptr, v = e
        t = ser(v)
        return self.at_path(value, path, Raw(t[:-1] + "," + t[-1]))

    def unquoted_key(self, value, entries):
        e = self.pick(entries, lambda s, v: isinstance(v, dict) and any(re.fullmatch(r"[A-Za-z]\w*", k) for k in v))
        if not e:
            return None
        path, ptr, v = e
        pairs = [(Raw(k) if re.fullmatch(r"[A-Za-z]\w*", k) else k, x) for k, x in v.items()]
        return self.at_path(value, path, Pairs(pairs))

    # text-level

    @staticmethod
    def boundaries(t):
        """Positions between tokens (outside strings and numbers)."""
        out, in_str, esc = [], False, False
        structural = set("{}[],:")
        for i in range(len(t) + 1):
            if not in_str:
                prev = t[i - 1] if i > 0 else None
                nxt = t[i] if i < len(t) else None
                if prev is None or nxt is None or prev in structural or nxt in structural:
                    out.append(i)
            if i == len(t):
                break
            c = t[i]
            if in_str:
                if esc:
                    esc = False
                elif c == "\\":
                    esc = True
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
        return out

    def whitespace_between_tokens(self, text):
        inner = [b for b in self.boundaries(text) if 0 < b < len(text)] or [0, len(text)]
        b = self.r.choice(inner)
        return text[:b] + self.r.choice([" ", "\n", "\t", "\r\n", "  "]) + text[b:]

    def leading_or_trailing_whitespace(self, text):
        return self.r.choice([" " + text, text + "\n", "\n" + text, text + " "])

    def truncated(self, text):
        if len(text) < 2:
            return ""
        return text[:self.r.randint(1, len(text) - 1)]

    def trailing_garbage(self, text):
        return text + self.r.choice(["x", ",", "}", "]", '"', "{}", "null", "//", "0", ".5"])

    def two_values(self, text):
        return text + text

    def wrapped_in_array(self, text):
        return "[" + text + "]"

    def byte_order_mark(self, text):
        return "\ufeff" + text

    def empty_document(self, text):
        return ""


VALUE_MUTATIONS = ["wrong_type", "missing_required", "undeclared_property", "properties_out_of_order",
                   "duplicate_property", "number_out_of_range", "integer_with_fraction", "integer_with_exponent",
                   "exponent_in_bounded_number", "string_too_long", "string_too_short", "array_too_long",
                   "array_too_short", "enum_off_by_one", "enum_respelled", "pattern_violated", "format_violated",
                   "number_respelled", "escape_spelling", "key_escape_spelling", "raw_control_character",
                   "invalid_escape", "single_quotes", "bad_number", "trailing_comma", "unquoted_key"]
TEXT_MUTATIONS = ["whitespace_between_tokens", "leading_or_trailing_whitespace", "truncated", "trailing_garbage",
                  "two_values", "wrapped_in_array", "byte_order_mark", "empty_document"]
# Always kept when they produce a rejected document; then schema-directed kinds, then the rest.
FIRST = ["whitespace_between_tokens", "truncated", "trailing_garbage"]
SCHEMA_KINDS = VALUE_MUTATIONS[:17]
SPELLING_KINDS = ["integer_with_fraction", "integer_with_exponent", "exponent_in_bounded_number"]
# Mutations whose result may still be valid: one of each kind is kept as an accepted document.
EXTRA_ACCEPT_KINDS = ["escape_spelling", "key_escape_spelling", "number_respelled", "undeclared_property",
                      "wrong_type", "enum_off_by_one", "wrapped_in_array", "missing_required"]

# ---------------------------------------------------------------------------------------------------------


def lint(name, schema, counts):
    def walk(s):
        if not isinstance(s, dict):
            return
        for k in s:
            if k not in SUPPORTED:
                raise SystemExit(f"{name}: keyword {k} outside the supported subset")
            counts[k] = counts.get(k, 0) + 1
        for k in ("properties", "$defs", "definitions"):
            for sub in s.get(k, {}).values():
                walk(sub)
        for k in ("additionalProperties", "items"):
            if isinstance(s.get(k), dict):
                walk(s[k])
        for k in ("prefixItems", "anyOf", "oneOf", "allOf"):
            for sub in s.get(k, []):
                walk(sub)
    Draft202012Validator.check_schema(schema)
    walk(schema)


def make_case(name, schema, stats):
    rng = random.Random(f"{SEED}:{name}")
    o = Oracle(schema)
    g = Gen(o, rng)
    m = Mutator(o, rng, g)
    seen = set()
    accepted, extra, bases = [], [], []
    rejected = {}

    def consider(text):
        """Labels text; returns (accept, why) or None when dropped."""
        if text in seen:
            return None
        try:
            ok, why = o.label(text)
        except Ambiguous as e:
            stats["dropped"][str(e)] = stats["dropped"].get(str(e), 0) + 1
            return None
        seen.add(text)
        return ok, why

    # valid documents: boundaries first, then random ones
    for mode in ["min", "max"] + ["rand"] * 80:
        if len(accepted) >= ACCEPT_MAX:
            break
        v = g.value("", 0, mode)
        text = ser(v)
        res = consider(text)
        if res is None:
            continue
        ok, why = res
        if ok:
            accepted.append({"text": text, "accept": True, "why": f"valid ({'random' if mode == 'rand' else mode})"})
            bases.append((v, text))
        else:
            rejected.setdefault("generated", []).append({"text": text, "accept": False, "why": why})
    if not bases:
        raise SystemExit(f"{name}: only {len(bases)} valid documents generated")

    # mutations
    accepted_by_kind = {}
    for kind in VALUE_MUTATIONS + TEXT_MUTATIONS:
        for attempt in range(8):
            v, text = rng.choice(bases)
            if kind in VALUE_MUTATIONS:
                t = getattr(m, kind)(v, m.entries(v))
            else:
                t = getattr(m, kind)(text)
            if t is None:
                continue
            res = consider(t)
            if res is None:
                continue
            ok, why = res
            label = kind.replace("_", " ")
            if ok:
                accepted_by_kind.setdefault(kind, []).append({"text": t, "accept": True, "why": f"valid ({label})"})
                continue
            rejected.setdefault(kind, []).append({"text": t, "accept": False, "why": f"{why} [{label}]"})
            if len(rejected[kind]) >= 3:
                break

    extra = [accepted_by_kind[k][0] for k in EXTRA_ACCEPT_KINDS if k in accepted_by_kind][:ACCEPT_EXTRA_MAX]
    others = [k for k in VALUE_MUTATIONS + TEXT_MUTATIONS if k not in FIRST and k not in SCHEMA_KINDS]
    plan = [(k, 0) for k in FIRST] + [(k, 0) for k in SCHEMA_KINDS] + [(k, 1) for k in SCHEMA_KINDS if k not in SPELLING_KINDS] + \
        [(k, 0) for k in others] + [(k, i) for i in (2, 1) for k in SCHEMA_KINDS if i == 2 or k in SPELLING_KINDS] + [("generated", i) for i in range(3)]
    chosen = []
    for k, i in plan:
        if len(chosen) < REJECT_MAX and i < len(rejected.get(k, [])):
            chosen.append(rejected[k][i])
    docs = accepted + extra + chosen
    stats["accepted"] += sum(d["accept"] for d in docs)
    stats["rejected"] += sum(not d["accept"] for d in docs)
    stats["noncanonical"] += sum("non-canonical" in d["why"] for d in docs)
    if sum(not d["accept"] for d in docs) < 5:
        raise SystemExit(f"{name}: too few rejected documents")
    return {"name": name, "schema": schema, "documents": docs}


def main():
    version = metadata.version("jsonschema")
    if version != JSONSCHEMA_VERSION:
        raise SystemExit(f"jsonschema {version} installed; these fixtures pin {JSONSCHEMA_VERSION} "
                         f"(pip install jsonschema=={JSONSCHEMA_VERSION})")
    try:
        rfc = metadata.version("rfc3339-validator")
    except metadata.PackageNotFoundError:
        rfc = None
    if rfc != RFC3339_VERSION or "date-time" not in Draft202012Validator.FORMAT_CHECKER.checkers:
        raise SystemExit(f"needs rfc3339-validator {RFC3339_VERSION} for the time/date-time formats "
                         f"(pip install rfc3339-validator=={RFC3339_VERSION})")

    counts = {}
    names = set()
    for name, schema in CASES:
        assert name not in names, name
        names.add(name)
        lint(name, schema, counts)
    for name, schema, keyword in UNSUPPORTED:
        assert name not in names, name
        names.add(name)
        Draft202012Validator.check_schema(schema)
    required = sorted(SUPPORTED - ANNOTATIONS - CONTAINERS) + ["$defs", "definitions"]
    thin = [k for k in required if counts.get(k, 0) < 3 and k != "definitions"]
    if thin:
        raise SystemExit(f"keywords used fewer than 3 times: {thin}")

    stats = {"accepted": 0, "rejected": 0, "noncanonical": 0, "dropped": {}}
    cases = [make_case(name, schema, stats) for name, schema in CASES]
    out = {
        "generator": "scripts/make_schema_fixtures.py",
        "jsonschema": version,
        "rfc3339-validator": rfc,
        "seed": SEED,
        "cases": cases,
        "unsupported": [{"name": n, "schema": s, "keyword": k} for n, s, k in UNSUPPORTED],
    }
    data = (json.dumps(out, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    if len(sys.argv) > 1:
        with open(sys.argv[1], "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
    print(f"{len(cases)} schemas, {stats['accepted']} accepted and {stats['rejected']} rejected documents "
          f"({stats['noncanonical']} of them non-canonical), {len(UNSUPPORTED)} unsupported schemas, "
          f"{len(data)} bytes", file=sys.stderr)
    print("dropped as ambiguous: " + ", ".join(f"{k}: {v}" for k, v in sorted(stats["dropped"].items())),
          file=sys.stderr)
    print("keyword uses: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in required), file=sys.stderr)


if __name__ == "__main__":
    main()
