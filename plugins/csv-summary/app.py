"""csv-summary: summarizes a CSV document (with a header row) as JSON.

Output, keys in this order:
  {"rows": N, "columns": [{"name": ..., "non_empty": ..., "numeric": true,
                           "min": ..., "max": ..., "mean": ...}       # all non-empty values numeric
                          {"name": ..., "non_empty": ..., "numeric": false,
                           "distinct": ...}, ...]}                      # otherwise
A value is empty when it is only whitespace. A column with no non-empty value
is reported as non-numeric with distinct 0. Numbers are decimal ("-2.5",
".5", "3e-2"); "nan", "inf" and "1_000" are not numeric.
"""

import csv
import json
import math
import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import config, logging, types

NAME = "csv-summary"
VERSION = "0.1.0"
DEFAULT_DELIMITER = ","


def invalid(message: str) -> Err:
    return Err(types.PluginError_InvalidInput(message))


def parse_delimiter(value: str, source: str) -> str:
    if value in ("\\t", "tab"):
        return "\t"
    if len(value) != 1 or value in ('"', "\r", "\n"):
        raise invalid(
            f"{source} `delimiter` must be one character (or `tab`), not {value!r}"
        )
    return value


# A decimal number, optionally signed, with an optional exponent ("1", "-2.5",
# ".5", "3e-2"); surrounding whitespace is allowed. No "nan", "inf", "1_000".
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)


def as_number(value: str):
    if not _NUMBER.fullmatch(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class Column:
    def __init__(self, name: str):
        self.name = name
        self.non_empty = 0
        self.numbers: list[float] | None = []  # None once a non-number is seen
        self.distinct: set[str] = set()

    def add(self, value: str) -> None:
        if not value.strip():
            return
        self.non_empty += 1
        self.distinct.add(value)
        if self.numbers is not None:
            number = as_number(value)
            if number is None:
                self.numbers = None
            else:
                self.numbers.append(number)

    def summary(self) -> dict:
        out = {"name": self.name, "non_empty": self.non_empty}
        if self.numbers:
            out["numeric"] = True
            out["min"] = float(min(self.numbers))
            out["max"] = float(max(self.numbers))
            out["mean"] = round(math.fsum(self.numbers) / len(self.numbers), 6)
        else:
            out["numeric"] = False
            out["distinct"] = len(self.distinct)
        return out


def summarize(data: bytes, delimiter: str) -> tuple[dict, int, int]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise invalid(f"the input is not valid UTF-8 (byte {e.start})")
    text = text.removeprefix("\ufeff")  # a byte-order mark
    if not text.strip():
        raise invalid("the input is empty; expected CSV with a header row")
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        columns = [Column(name) for name in header]
        rows = 0
        for row in reader:
            if not row:
                continue  # a blank line
            if len(row) != len(columns):
                raise invalid(
                    f"line {reader.line_num} has {len(row)} fields, the header has "
                    f"{len(columns)} (delimiter {delimiter!r})"
                )
            rows += 1
            for column, value in zip(columns, row):
                column.add(value)
    except csv.Error as e:
        raise invalid(f"line {reader.line_num}: malformed CSV: {e}")
    result = {"rows": rows, "columns": [c.summary() for c in columns]}
    return result, rows, len(columns)


class Plugin(exports.Plugin):
    def get_metadata(self) -> types.PluginMetadata:
        return types.PluginMetadata(
            name=NAME,
            version=VERSION,
            description="Summarizes CSV input (row count, per-column counts and statistics) as JSON.",
            author="Warden examples",
        )

    def initialize(self, config: list[types.KeyValue]) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def get_status(self) -> types.PluginStatus:
        return types.PluginStatus.READY


class Processing(exports.Processing):
    def process(self, request: types.ProcessRequest) -> types.ProcessResponse:
        chosen = [o.value for o in request.options if o.key == "delimiter"]
        if chosen:
            delimiter = parse_delimiter(chosen[-1], "option")
        else:
            configured = config.get_config("delimiter")
            delimiter = (
                DEFAULT_DELIMITER
                if configured is None
                else parse_delimiter(configured, "config")
            )
        result, rows, columns = summarize(bytes(request.input), delimiter)
        logging.log(types.LogLevel.INFO, f"summarized {rows} rows, {columns} columns")
        return types.ProcessResponse(
            output=json.dumps(result, separators=(",", ":"), allow_nan=False).encode("utf-8"),
            content_type="application/json",
            items_processed=rows,
        )

    def validate(self, input: bytes) -> bool:
        try:
            return bool(bytes(input).decode("utf-8").removeprefix("\ufeff").strip())
        except UnicodeDecodeError:
            return False
