#!/usr/bin/env python3
"""Sends an OTLP ExportProfilesServiceRequest over gRPC with the official client (grpcio,
pinned in requirements.txt) to ProfilesService/Export, as an OpenTelemetry Collector's
OTLP exporter does, and prints the outcome as one JSON line:
{"code": "OK" | gRPC status name, "details": status message, "rejected": n, "message": partial
success's error message}.

Usage: grpc_export.py HOST:PORT REQUEST_FILE [--token T] [--tenant ID] [--compression gzip|deflate]

REQUEST_FILE holds the request's protobuf bytes (make_request.py writes them), sent as they
are, so that malformed requests can be sent too.
"""
import json
import sys

import grpc
from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2 as svc

METHOD = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"


def main(argv):
    target, path = argv[0], argv[1]
    rest = argv[2:]
    md = []
    comp = grpc.Compression.NoCompression
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "--token":
            md.append(("authorization", "Bearer " + rest[i + 1]))
            i += 2
        elif a == "--tenant":
            md.append(("x-scope-orgid", rest[i + 1]))
            i += 2
        elif a == "--compression":
            comp = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}[rest[i + 1]]
            i += 2
        else:
            raise SystemExit(f"unknown argument {a!r}")
    with open(path, "rb") as f:
        body = f.read()
    with grpc.insecure_channel(
        target, options=[("grpc.max_send_message_length", 64 << 20)]
    ) as ch:
        export = ch.unary_unary(
            METHOD,
            request_serializer=None,
            response_deserializer=svc.ExportProfilesServiceResponse.FromString,
        )
        try:
            resp = export(
                body,
                metadata=md,
                timeout=30,
                compression=comp,
            )
            out = {
                "code": "OK",
                "details": "",
                "rejected": resp.partial_success.rejected_profiles,
                "message": resp.partial_success.error_message,
            }
        except grpc.RpcError as e:
            out = {"code": e.code().name, "details": e.details() or "", "rejected": 0, "message": ""}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
