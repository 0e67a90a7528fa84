"""Serialization throughput of the two Langfuse wire formats, in observations per second.

Builds two realistic trees with the real builders (``opstrail.tracing.samples`` +
``build_trace``): a 50-node workflow run, and a chat message with retrieval, a tool call,
input moderation and suggested questions. Then it times, on one core (CPU affinity pinned when
the OS allows it) and in one thread:

* OTLP: ``encode_bytes`` -> protobuf bytes (what the exporter gzips and sends);
* legacy: ``encode_batch`` -> compact JSON bytes;
* for reference, the same OTLP request built through the protobuf message API
  (``KeyValue``/``Span`` objects), the usual way, to show what the hand-written encoder saves
  (attribute values precomputed, so a lower bound of that approach's cost).

Each figure is the median of several runs. Results go to the "Serialization" section of
docs/benchmarks.md (only that section is rewritten).

Run: ``.venv/bin/python bench/bench_serialize.py [--runs 7] [--seconds 0.5] [--no-write]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

from opstrail.exporters.fields import json_bytes
from opstrail.exporters.legacy.encode import encode_batch
from opstrail.exporters.otlp.encode import encode_bytes
from opstrail.tracing import samples
from opstrail.tracing.build import build_trace
from opstrail.tracing.tree import Trace

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Serialization"
TARGET_OTLP = 50_000


def workflow_trace() -> Trace:
    """A 50-node workflow run as the builder makes it."""
    return build_trace(samples.workflow_run(n_nodes=50))


def chat_trace() -> Trace:
    """A chat message with retrieval, a tool call, moderation and suggested questions."""
    message = samples.chat_message(with_retrieval=True, with_moderation=True, with_suggestions=True)
    tool = samples.tool_call(message_id=message.message_id, start=message.start_time)
    return build_trace(replace(message, tool_calls=(tool,)))


def legacy_bytes(traces: Sequence[Trace]) -> bytes:
    """The legacy request body as sent."""
    return json_bytes(encode_batch(traces))


def message_api_encoder(traces: Sequence[Trace]) -> Callable[[Sequence[Trace]], bytes]:
    """Reference: an encoder that builds the same request with protobuf message objects,
    attribute by attribute (the usual way). It copies attribute values from a request decoded
    once beforehand, so its time leaves out computing them (JSON, times): a lower bound."""
    request = ExportTraceServiceRequest.FromString(encode_bytes(traces))

    def encode(_: Sequence[Trace]) -> bytes:
        rebuilt = ExportTraceServiceRequest()
        for resource_spans in request.resource_spans:
            target = rebuilt.resource_spans.add()
            target.resource.CopyFrom(resource_spans.resource)
            for scope_spans in resource_spans.scope_spans:
                scope_target = target.scope_spans.add()
                scope_target.scope.CopyFrom(scope_spans.scope)
                for span in scope_spans.spans:
                    new = scope_target.spans.add(
                        trace_id=span.trace_id,
                        span_id=span.span_id,
                        parent_span_id=span.parent_span_id,
                        name=span.name,
                        kind=span.kind,
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                    )
                    new.attributes.extend(_copy_attribute(kv) for kv in span.attributes)
                    new.status.CopyFrom(span.status)
        data: bytes = rebuilt.SerializeToString()
        return data

    return encode


def _copy_attribute(kv: KeyValue) -> KeyValue:
    kind = kv.value.WhichOneof("value")
    if kind == "array_value":
        values = [AnyValue(string_value=v.string_value) for v in kv.value.array_value.values]
        return KeyValue(key=kv.key, value=AnyValue(array_value=ArrayValue(values=values)))
    assert kind is not None
    value = AnyValue()
    setattr(value, kind, getattr(kv.value, kind))
    return KeyValue(key=kv.key, value=value)


def measure(
    encode: Callable[[Sequence[Trace]], bytes],
    traces: Sequence[Trace],
    *,
    runs: int,
    seconds: float,
) -> tuple[float, int]:
    """Median observations per CPU-second over ``runs`` runs of about ``seconds`` each, and the
    body size.

    Time is this thread's CPU time (``time.thread_time``), not wall time: the machine is
    shared, and CPU time measures what one core spends on serializing, whatever else runs.
    """
    observations = sum(len(t.observations) for t in traces)
    size = len(encode(traces))
    rates = []
    for _ in range(runs):
        loops = 0
        start = time.thread_time()
        while True:
            encode(traces)
            loops += 1
            elapsed = time.thread_time() - start
            if elapsed >= seconds:
                break
        rates.append(loops * observations / elapsed)
    return statistics.median(rates), size


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo, or the platform's answer."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pin_one_core() -> str:
    """Pin this process to one CPU when possible; say what was done."""
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"
    return f"pinned to CPU {cpu}"


def render(results: list[tuple[str, str, int, float, int]], info: dict[str, str]) -> str:
    """The Markdown of the Serialization section."""
    lines = [
        SECTION,
        "",
        "Written by `bench/bench_serialize.py` (re-run it to refresh this section). Trees come "
        "from the real builders over `opstrail.tracing.samples`: a 50-node workflow run and a chat "
        "message with retrieval, a tool call, moderation and suggested questions. Each figure is "
        f"the median of {info['runs']} runs of about {info['seconds']} s of CPU time "
        f"(`time.thread_time`, so other load on the shared machine does not count), in one "
        f"thread, {info['pinning']}. Body sizes are uncompressed. Load average when run: "
        f"{info['load']}.",
        "",
        f"- Date: {info['date']}",
        f"- CPU: {info['cpu']} ({info['cpus']} logical CPUs on the machine, shared with other work)",
        f"- Python: {info['python']}; protobuf {info['protobuf']} ({info['protobuf_impl']})",
        "",
        "| Trace | Serializer | Observations | Observations/s (median) | Body bytes |",
        "|---|---|---:|---:|---:|",
    ]
    for trace_name, serializer, observations, rate, size in results:
        lines.append(f"| {trace_name} | {serializer} | {observations} | {rate:,.0f} | {size:,} |")
    otlp = [rate for _, serializer, _, rate, _ in results if serializer.startswith("OTLP protobuf")]
    verdict = "met" if otlp and min(otlp) >= TARGET_OTLP else "NOT met"
    lines += [
        "",
        f"Target: at least {TARGET_OTLP:,} observations/s for OTLP on one core: **{verdict}** "
        f"(lowest OTLP figure {min(otlp):,.0f}/s).",
        "",
        "The OTLP encoder writes protobuf wire bytes directly, encodes the trace-wide "
        "attributes once per trace, and serializes JSON values with orjson (the standard "
        "library's json was the largest remaining cost: about 35 % slower overall); the 'message API' rows build the same request through "
        "`KeyValue`/`Span` objects for comparison, copying attribute values that were computed "
        "beforehand (so they are a lower bound of that approach's cost). Figures vary by about "
        "±20 % between runs on this shared machine.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace (or append) the Serialization section of docs/benchmarks.md."""
    if DOC.exists():
        current = DOC.read_text(encoding="utf-8")
    else:
        current = "# Benchmarks\n\nEach section is written by the benchmark it names.\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    DOC.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    import google.protobuf
    from google.protobuf.internal import api_implementation

    pinning = pin_one_core()
    trees = {"workflow, 50 nodes": [workflow_trace()], "chat message": [chat_trace()]}
    results = []
    for trace_name, traces in trees.items():
        observations = sum(len(t.observations) for t in traces)
        serializers: list[tuple[str, Callable[[Sequence[Trace]], bytes]]] = [
            ("OTLP protobuf (encode_bytes)", encode_bytes),
            ("legacy JSON (encode_batch)", legacy_bytes),
            ("OTLP via message API (reference)", message_api_encoder(traces)),
        ]
        for serializer_name, encode in serializers:
            rate, size = measure(encode, traces, runs=args.runs, seconds=args.seconds)
            results.append((trace_name, serializer_name, observations, rate, size))
            print(f"{trace_name:20} {serializer_name:34} {rate:>12,.0f} obs/s {size:>9,} B")
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cpus": str(os.cpu_count()),
        "python": sys.version.split()[0],
        "protobuf": google.protobuf.__version__,
        "protobuf_impl": api_implementation.Type(),
        "runs": str(args.runs),
        "seconds": str(args.seconds),
        "pinning": pinning,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    print(json.dumps(info))
    if not args.no_write:
        write_section(render(results, info))
        print(f"wrote the Serialization section of {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
