"""Wire formats and HTTP clients for Langfuse: thin serializers plus one client each.

Layout:

* ``base``: the ``Exporter`` protocol, ``Destination``, ``Outcome``, ``ExportResult``.
* ``otlp.encode`` / ``legacy.encode``: pure serializers of ``tracing.tree.Trace``.
* ``otlp.exporter`` / ``legacy.exporter``: one POST per batch over an ``httpx.Client``; never
  raise for a remote failure.
* ``http_exporter.HttpExporter``: the base of both exporters: its HTTP client (owned or lent),
  ``export_score``, ``delete_score`` and ``close``.
* ``scores``: ``POST``/``DELETE /api/public/scores`` (both paths).
* ``limits.shrink_trace``: cut the largest fields until a trace fits a cap (also on 413).
* ``probe``: server version -> path; credential check -> project or a coded error.
* ``registry``: one exporter (one HTTP client) per destination; ``memory``: a recording fake.

What moves between the tree and the wire (everything else arrives as it is; the tests in
``tests/exporters`` read every request back and check it field by field):

* OTLP (contract §3): trace-wide fields go on every span (``langfuse.trace.name``,
  ``user.id``, ``session.id``, ``langfuse.trace.tags``, ``langfuse.trace.metadata.<key>``,
  ``langfuse.release``, ``langfuse.environment``, ``langfuse.version``). Trace metadata is one
  attribute per key: scalars native, other values as JSON text, ``None`` values left out (an
  OTel attribute cannot be null). The trace timestamp is the root span's start. Trace
  input/output go on the root observation when it has none of its own, and to
  ``langfuse.trace.input/output`` on the root span when they differ from the root's. Observation
  metadata goes both whole (``langfuse.observation.metadata``, JSON) and per scalar key. Resource
  attributes: ``service.name`` only; scope ``opstrail`` (never ``langfuse-sdk*``).
* Legacy (decisions.md "legacy dialect"): only ``trace-``, ``span-``, ``generation-`` and
  ``event-create``. ``tool``/``retriever``/``guardrail``/``chain`` become span events and
  ``agent`` a generation event, with ``observation_type`` in metadata; a span-mapped observation
  that carries a model, usage or cost becomes a generation event instead (a span body has no
  such fields and the server would drop them silently). ``environment`` is also copied into
  metadata for v2 servers. Added metadata keys never overwrite existing ones. An event
  observation has no ``endTime`` (it is a point in time: its start). No ``trace-create`` for a
  trace whose root was exported earlier (``external_parent_ids``).
* Both: model parameters that are not a Langfuse ``MapValue`` (nested objects, mixed lists)
  travel as JSON text; non-finite floats become ``null``; a score's ``timestamp`` (no field in
  ``CreateScoreRequest``) goes to its metadata.
* Above the size caps (OTLP 4 MB per request; legacy 3.5 MB per request and 1 MB per event)
  the largest input, output or metadata values are cut with ``…[truncated N bytes]`` and
  ``opstrail_truncated: true`` in the observation's (or trace's) metadata.
"""
