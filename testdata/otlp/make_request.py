#!/usr/bin/env python3
"""Builds an OTLP ExportProfilesServiceRequest (protobuf) from a Go pprof file, with the
official OpenTelemetry definitions (opentelemetry-proto, pinned in requirements.txt).

Usage: make_request.py [--json] PROFILE.pb.gz OUT [service.name]

With --json, OUT is OTLP/JSON (protobuf's JSON mapping, as json_format writes it).

Each pprof sample type becomes one OTLP profile (the schema has one sample type per
profile) sharing the samples' stacks and attributes; pprof-only facts travel in the
attributes gocost reads (docs/adr/0024).
"""
import gzip
import sys

from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2 as svc
from opentelemetry.proto.common.v1 import common_pb2 as common
from opentelemetry.proto.profiles.v1development import profiles_pb2 as pb


def varint(b, i):
    x = s = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return x, i


def fields(b):
    """(number, wire type, value) of a protobuf message's fields."""
    i = 0
    while i < len(b):
        k, i = varint(b, i)
        n, w = k >> 3, k & 7
        if w == 0:
            v, i = varint(b, i)
        elif w == 2:
            ln, i = varint(b, i)
            v, i = b[i:i + ln], i + ln
        elif w == 1:
            v, i = int.from_bytes(b[i:i + 8], "little"), i + 8
        elif w == 5:
            v, i = int.from_bytes(b[i:i + 4], "little"), i + 4
        else:
            raise ValueError(f"wire type {w}")
        yield n, w, v


def ints(w, v):
    if w == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def signed(x):
    return x - (1 << 64) if x >= 1 << 63 else x


def msg(b, spec):
    """A dict of a message's fields: spec maps number → (name, repeated?)."""
    d = {name: ([] if rep else 0) for name, rep in spec.values()}
    for n, w, v in fields(b):
        if n not in spec:
            continue
        name, rep = spec[n]
        if rep == "ints":
            d[name].extend(ints(w, v))
        elif rep:
            d[name].append(v)
        else:
            d[name] = v
    return d


def read_pprof(path):
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return msg(data, {
        1: ("sample_type", True), 2: ("sample", True), 3: ("mapping", True),
        4: ("location", True), 5: ("function", True), 6: ("string_table", True),
        7: ("drop_frames", False), 8: ("keep_frames", False), 9: ("time_nanos", False),
        10: ("duration_nanos", False), 11: ("period_type", False), 12: ("period", False),
        13: ("comment", "ints"), 14: ("default_sample_type", False), 15: ("doc_url", False),
    })


def main():
    args = sys.argv[1:]
    as_json = args[:1] == ["--json"]
    if as_json:
        args = args[1:]
    src, out = args[0], args[1]
    service = args[2] if len(args) > 2 else "otlp-test"
    p = read_pprof(src)
    pstr = [s.decode() for s in p["string_table"]]

    req = svc.ExportProfilesServiceRequest()
    d = req.dictionary
    strings = {}

    def s(text):
        if text not in strings:
            strings[text] = len(d.string_table)
            d.string_table.append(text)
        return strings[text]

    s("")
    attrs = {}

    def attr(key, value, unit=""):
        k = (key, type(value).__name__, value, unit)
        if k not in attrs:
            a = d.attribute_table.add()
            a.key_strindex = s(key)
            if isinstance(value, bool):
                a.value.bool_value = value
            elif isinstance(value, int):
                a.value.int_value = value
            else:
                a.value.string_value = value
            if unit:
                a.unit_strindex = s(unit)
            attrs[k] = len(d.attribute_table) - 1
        return attrs[k]

    # Entry 0 of every table is the zero value.
    d.mapping_table.add()
    d.location_table.add()
    d.function_table.add()
    d.attribute_table.add()
    d.stack_table.add()

    mapping_ix = {}
    for b in p["mapping"]:
        m = msg(b, {1: ("id", False), 2: ("start", False), 3: ("limit", False),
                    4: ("offset", False), 5: ("filename", False), 6: ("build_id", False),
                    7: ("has_functions", False), 8: ("has_filenames", False),
                    9: ("has_line_numbers", False), 10: ("has_inline_frames", False)})
        om = d.mapping_table.add()
        om.memory_start, om.memory_limit, om.file_offset = m["start"], m["limit"], m["offset"]
        om.filename_strindex = s(pstr[m["filename"]])
        if m["build_id"]:
            om.attribute_indices.append(attr("process.executable.build_id.gnu", pstr[m["build_id"]]))
        for flag in ("has_functions", "has_filenames", "has_line_numbers", "has_inline_frames"):
            if m[flag]:
                om.attribute_indices.append(attr("pprof.mapping." + flag, True))
        mapping_ix[m["id"]] = len(d.mapping_table) - 1

    function_ix = {}
    for b in p["function"]:
        f = msg(b, {1: ("id", False), 2: ("name", False), 3: ("system_name", False),
                    4: ("filename", False), 5: ("start_line", False)})
        of = d.function_table.add()
        of.name_strindex = s(pstr[f["name"]])
        of.system_name_strindex = s(pstr[f["system_name"]])
        of.filename_strindex = s(pstr[f["filename"]])
        of.start_line = signed(f["start_line"])
        function_ix[f["id"]] = len(d.function_table) - 1

    location_ix = {}
    for b in p["location"]:
        loc = msg(b, {1: ("id", False), 2: ("mapping_id", False), 3: ("address", False),
                      4: ("line", True), 5: ("is_folded", False)})
        ol = d.location_table.add()
        ol.mapping_index = mapping_ix.get(loc["mapping_id"], 0)
        ol.address = loc["address"]
        for lb in loc["line"]:
            ln = msg(lb, {1: ("function_id", False), 2: ("line", False), 3: ("column", False)})
            line = ol.lines.add()
            line.function_index = function_ix.get(ln["function_id"], 0)
            line.line = signed(ln["line"])
            line.column = signed(ln["column"])
        if loc["is_folded"]:
            ol.attribute_indices.append(attr("pprof.location.is_folded", True))
        location_ix[loc["id"]] = len(d.location_table) - 1

    stack_ix = {}
    samples = []
    for b in p["sample"]:
        sm = msg(b, {1: ("location_id", "ints"), 2: ("value", "ints"), 3: ("label", True)})
        stack = tuple(location_ix[i] for i in sm["location_id"])
        if stack not in stack_ix:
            d.stack_table.add().location_indices.extend(stack)
            stack_ix[stack] = len(d.stack_table) - 1
        labels = []
        for lb in sm["label"]:
            la = msg(lb, {1: ("key", False), 2: ("str", False), 3: ("num", False), 4: ("num_unit", False)})
            if la["str"]:
                labels.append(attr(pstr[la["key"]], pstr[la["str"]]))
            else:
                labels.append(attr(pstr[la["key"]], signed(la["num"]), pstr[la["num_unit"]]))
        samples.append((stack_ix[stack], labels, [signed(v) for v in sm["value"]]))

    profile_attrs = []
    for c in p["comment"]:
        profile_attrs.append(attr("pprof.profile.comment", pstr[c]))
    for key, name in (("drop_frames", "drop_frames"), ("keep_frames", "keep_frames"),
                      ("doc_url", "doc_url"), ("default_sample_type", "default_sample_type")):
        if p[key]:
            profile_attrs.append(attr("pprof.profile." + name, pstr[p[key]]))

    rp = req.resource_profiles.add()
    kv = rp.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = service
    kv = rp.resource.attributes.add()
    kv.key = "deployment.environment"
    kv.value.string_value = "test"
    sp = rp.scope_profiles.add()
    sp.scope.name = "make_request.py"
    period_type = msg(p["period_type"], {1: ("type", False), 2: ("unit", False)}) if p["period_type"] else None
    for col, vb in enumerate(p["sample_type"]):
        vt = msg(vb, {1: ("type", False), 2: ("unit", False)})
        op = sp.profiles.add()
        op.sample_type.type_strindex = s(pstr[vt["type"]])
        op.sample_type.unit_strindex = s(pstr[vt["unit"]])
        op.time_unix_nano = p["time_nanos"]
        op.duration_nano = p["duration_nanos"]
        if period_type:
            op.period_type.type_strindex = s(pstr[period_type["type"]])
            op.period_type.unit_strindex = s(pstr[period_type["unit"]])
        op.period = signed(p["period"])
        op.attribute_indices.extend(profile_attrs)
        for stack, labels, values in samples:
            os_ = op.samples.add()
            os_.stack_index = stack
            os_.attribute_indices.extend(labels)
            os_.values.append(values[col])
    if as_json:
        from google.protobuf import json_format
        open(out, "w").write(json_format.MessageToJson(req, indent=None))
    else:
        open(out, "wb").write(req.SerializeToString())


if __name__ == "__main__":
    main()
