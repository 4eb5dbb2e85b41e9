"""The config's JSON schema (workflow/schemas/config.schema.yaml) and its reference
(docs/config.md), both generated from `opsa.config.PipelineConfig`; tests check that the
committed files are current. Write them again after changing a block or a settings model:

    python -m opsa.config_docs          # --check: exit 1 if either file is stale

A field's schema comes from its type, its constraints and its description; the markers and
notes in `opsa.config_blocks` say which defaults the schema writes into Snakemake's config dict
and what it adds to the settings models of the steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from opsa.config import SCHEMA_FILE, PipelineConfig
from opsa.config_blocks import ENTRY_MODELS, FIELD_NOTES, MODEL_NOTES, Block, Settings

DOCS_FILE = SCHEMA_FILE.parents[2] / "docs/config.md"
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}
BOUNDS = {  # annotated-types bound -> (keyword, its attribute)
    at.Ge: ("minimum", "ge"),
    at.Gt: ("exclusiveMinimum", "gt"),
    at.Le: ("maximum", "le"),
    at.Lt: ("exclusiveMaximum", "lt"),
}
SIZES = {"array": "Items", "object": "Properties", "string": "Length"}
ORDER = (
    "description", "$ref", "type", "enum", "pattern", "minimum", "exclusiveMinimum", "maximum",
    "exclusiveMaximum", "minItems", "maxItems", "minProperties", "minLength", "maxLength",
    "uniqueItems", "items", "propertyNames", "additionalProperties", "required", "properties",
    "oneOf", "default",
)  # fmt: skip
NO_FILL = Settings()


@dataclass(frozen=True)
class Row:
    """One key of the reference."""

    key: str
    type: str
    default: str
    description: str


class SchemaWriter:
    """Builds the schema of PipelineConfig, and a row of the reference for each key."""

    def __init__(self) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}
        self.rows: list[Row] = []

    def schema(self) -> dict[str, Any]:
        root = self.model(PipelineConfig, NO_FILL, "")
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **root,
            "definitions": dict(sorted(self.definitions.items())),
        }

    def model(
        self, model: type[BaseModel], place: Settings, path: str, keys: list[str] | None = None
    ) -> dict[str, Any]:
        """The object schema of a settings model or block (of `keys` only, when given)."""
        fields = model.model_fields
        names = keys if keys is not None else list(fields)
        # a block's own keys before those of the settings model it extends
        names.sort(key=lambda name: not issubclass(_declaring(model, name), Block))
        schema: dict[str, Any] = {"type": "object", "additionalProperties": False}
        if issubclass(model, Block):
            schema["description"] = " ".join((model.__doc__ or "").split())
        schema["properties"] = {
            name: self.field(model, name, place, f"{path}.{name}".lstrip(".")) for name in names
        }
        required = [name for name in names if fields[name].is_required()]
        if required:
            schema["required"] = required
        return _ordered(schema | MODEL_NOTES.get(model.__name__, {}))

    def field(self, model: type[BaseModel], name: str, place: Settings, path: str) -> dict:
        """One field's schema: the default written only where the place fills it."""
        info = model.model_fields[name]
        owner = _declaring(model, name)
        block = issubclass(owner, Block)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        filled = default is not None if block else place.fills(name)
        nested = Settings(fill=True) if filled and isinstance(default, BaseModel) else NO_FILL
        notes = FIELD_NOTES.get(f"{owner.__name__}.{name}", ())
        nullable = not block and owner not in ENTRY_MODELS
        row = len(self.rows)
        self.rows.append(Row(path, "", "", ""))  # before the rows of its keys
        schema = self.of_type(info.annotation, [info, *notes], nullable, nested, path)
        if filled and not info.is_required():
            schema.setdefault("default", _json(default))  # a note may give its JSON form
        self.rows[row] = self.row(path, schema, info, default, filled)
        return _ordered(schema)

    def row(self, path: str, schema: dict, info: FieldInfo, default: Any, filled: bool) -> Row:
        """A key of the reference: a default in italics is the step's own (not filled)."""
        shown = self.definitions[schema["$ref"].rpartition("/")[2]] if "$ref" in schema else schema
        if info.is_required():
            text = "required"
        elif default is None and "null" not in _kinds(shown):
            text = "—"  # an optional key: left out
        elif filled:
            text = f"`{json.dumps(schema['default'])}`"
        else:
            text = f"*`{json.dumps(_json(default))}`*"
        description = schema.get("description") or shown.get("description", "")
        return Row(path, _type_text(shown), text, description)

    def of_type(
        self, tp: Any, metadata: list[Any], nullable: bool, place: Settings, path: str
    ) -> dict[str, Any]:
        """The schema of a type, with the constraints and notes of its metadata."""
        metadata = _flat(metadata)
        if get_origin(tp) is Annotated:
            inner, *more = get_args(tp)
            return self.of_type(inner, [*more, *metadata], nullable, place, path)
        if get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp):
            (inner,) = [arg for arg in get_args(tp) if arg is not type(None)]
            schema = self.of_type(inner, metadata, nullable, place, path)
            if nullable:  # (every nullable field has a plain type, no $ref)
                schema["type"] = [schema["type"], "null"]
            return schema
        marker = next((m for m in metadata if isinstance(m, Settings)), None)
        schema = self.base(tp, marker or place, path)
        if marker is not None and marker.define is not None:
            schema = self.define(marker.define, schema)
        for item in metadata:  # at a definition, the place's own description and bounds
            _apply(schema, item)
        return schema

    def base(self, tp: Any, place: Settings, path: str) -> dict[str, Any]:
        """The schema of a type before its constraints."""
        origin, args = get_origin(tp), get_args(tp)
        if place.model is not None:  # a raw block holding the keys of a settings model
            return self.model(place.resolve(), Settings(fill=place.fill), path, place.keys())
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return self.model(tp, place, path)
        if origin is Literal:
            return {"type": JSON_TYPES[type(args[0])], "enum": list(args)}
        if origin in (list, tuple):
            items = self.of_type(args[0], [], False, place, f"{path}[]")
            size = {"minItems": len(args), "maxItems": len(args)} if origin is tuple else {}
            return {"type": "array", "items": items, **size}
        if origin is dict:
            return self.mapping(args[0], args[1], place, path)
        return {"type": JSON_TYPES[tp]} if tp in JSON_TYPES else {}

    def mapping(self, key: Any, value: Any, place: Settings, path: str) -> dict[str, Any]:
        """A dict: fixed keys (a Literal), or names (checked by a pattern) to values."""
        if get_origin(key) is Literal:
            props = {k: self.of_type(value, [], False, place, f"{path}.{k}") for k in get_args(key)}
            return {"type": "object", "additionalProperties": False, "properties": props}
        schema: dict[str, Any] = {"type": "object"}
        if get_origin(key) is Annotated:
            schema["propertyNames"] = _ordered(self.of_type(key, [], False, place, path))
        if value is not Any:
            schema["additionalProperties"] = self.of_type(value, [], False, place, f"{path}.<name>")
        return schema

    def define(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        """A reference to definition `name` (every place naming it must show the same)."""
        schema = _ordered(schema)
        if self.definitions.setdefault(name, schema) != schema:
            raise ValueError(f"schema definition '{name}': two places show it differently")
        return {"$ref": f"#/definitions/{name}"}


def _declaring(model: type[BaseModel], name: str) -> type[BaseModel]:
    """The class whose body declares field `name`."""
    return next(c for c in model.__mro__ if name in vars(c).get("__annotations__", {}))


def _flat(metadata: list[Any]) -> list[Any]:
    """Annotated metadata with each FieldInfo opened: its constraints, then its description and
    its extra schema (a dict, or a function that edits the schema)."""
    flat: list[Any] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            flat += _flat(item.metadata)
            flat += [{"description": item.description}] if item.description else []
            flat += [item.json_schema_extra] if item.json_schema_extra else []
        else:
            flat.append(item)
    return flat


def _apply(schema: dict[str, Any], item: Any) -> None:
    """Add one metadata item: an annotated-types bound or length, a pattern, a dict of schema
    keywords (a note, a description) or a function that edits the schema."""
    if type(item) in BOUNDS:
        keyword, attribute = BOUNDS[type(item)]
        schema[keyword] = getattr(item, attribute)
    elif isinstance(item, (at.MinLen, at.MaxLen)):
        kind = _kinds(schema)[0]
        bound = "min" if isinstance(item, at.MinLen) else "max"
        value = item.min_length if bound == "min" else item.max_length
        schema[f"{bound}{SIZES[kind]}"] = value
    elif getattr(item, "pattern", None) is not None:
        schema["pattern"] = item.pattern
    elif isinstance(item, dict):
        schema.update(item)
    elif isinstance(item, types.FunctionType):
        item(schema)


def _json(value: Any) -> Any:
    """A default as the schema writes it: a settings model as the fields it was given."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    return to_jsonable_python(value)


def _ordered(schema: dict[str, Any]) -> dict[str, Any]:
    return {key: schema[key] for key in sorted(schema, key=ORDER.index)}


def _kinds(schema: dict[str, Any]) -> list[str]:
    kinds = schema.get("type", [])
    return kinds if isinstance(kinds, list) else [kinds]


def _type_text(schema: dict[str, Any]) -> str:
    """A schema's type in words, for the reference."""
    if "$ref" in schema:
        return "mapping"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    texts = []
    for kind in _kinds(schema) or ["any"]:
        if kind == "array":
            text = f"list of {_type_text(schema['items'])}"
            text += ", unique" if schema.get("uniqueItems") else ""
            text += f", at least {schema['minItems']}" if schema.get("minItems") else ""
        elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
            text = f"mapping of names to {_type_text(schema['additionalProperties'])}"
        elif kind == "object":
            text = "mapping"
        else:
            text = kind
        texts.append(text + _bounds_text(schema) if kind in ("integer", "number") else text)
    return " or ".join(texts)


def _bounds_text(schema: dict[str, Any]) -> str:
    signs = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}
    bounds = [f"{sign} {schema[key]}" for key, sign in signs.items() if key in schema]
    return f" {', '.join(bounds)}" if bounds else ""


def schema_yaml() -> str:
    """The schema file's text."""

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # each default its own object
            return True

    header = (
        "# GENERATED from opsa.config.PipelineConfig by `python -m opsa.config_docs`: do not\n"
        "# edit. docs/config.md describes every key.\n"
    )
    body = yaml.dump(
        SchemaWriter().schema(),
        Dumper=Dumper,
        sort_keys=False,
        default_flow_style=None,
        width=100,
        allow_unicode=True,
    )
    return header + body


def docs_markdown() -> str:
    """The reference: one section per top-level key, a row per key under it."""
    writer = SchemaWriter()
    writer.schema()
    lines = [
        "# Configuration reference",
        "",
        "<!-- GENERATED from opsa.config.PipelineConfig by `python -m opsa.config_docs`: do "
        "not edit. -->",
        "",
        "Every key of `config/config.yaml` and of the overlays merged over it (`--configfile`). "
        "The JSON schema `workflow/schemas/config.schema.yaml` checks them and writes each "
        "plain default into the config; a default in *italics* is the step's own, applied when "
        "the step reads its block. `<name>` stands for any key of a mapping, `[]` for any item "
        "of a list.",
    ]
    for top, rows in _sections(writer.rows).items():
        lines += ["", f"## `{top}`", ""]
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        lines += [
            f"| `{r.key}` | {_cell(r.type)} | {_cell(r.default)} | {_cell(r.description)} |"
            for r in rows
        ]
    return "\n".join(lines) + "\n"


def _sections(rows: list[Row]) -> dict[str, list[Row]]:
    sections: dict[str, list[Row]] = {}
    for row in rows:
        sections.setdefault(row.key.split(".")[0].split("[")[0], []).append(row)
    return sections


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    """Write the schema and the reference; with --check, only say whether they are current."""
    parser = argparse.ArgumentParser(prog="python -m opsa.config_docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    check = parser.parse_args(argv).check
    stale = []
    for path, text in ((SCHEMA_FILE, schema_yaml()), (DOCS_FILE, docs_markdown())):
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"{path}: {'stale' if check else 'written'}", file=sys.stderr)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
