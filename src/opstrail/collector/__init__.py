"""A local Langfuse-compatible receiver. Shares no code with the exporters on purpose, so it
cannot share their bugs.

It imitates one Langfuse version (default 4.16.0) and serves, over real HTTP:

- ``GET /api/public/health`` and ``/ready`` (no auth), ``GET /api/public/projects``;
- ``POST /api/public/otel/v1/traces`` (OTLP protobuf or JSON, gzip; from 3.22);
- ``POST /api/public/ingestion`` (legacy batch, 207 per event; v4 refuses trace events);
- ``POST /api/public/scores``, ``DELETE /api/public/scores/{id}``;
- ``GET /api/public/traces[/{id}]``, ``GET /api/public/observations`` (read back);
- ``/_collector/faults`` (GET/POST/DELETE): injected failures, see ``faults.FaultConfig``.

Modules: ``config`` (keys, version, limits), ``app`` (``create_collector_app``), one module per
route group (``otlp_route``, ``ingestion_route``, ``scores_route``, ``read_routes``), the wire
rules (``otlp``, ``legacy``, ``values``, ``auth``), ``store`` (SQLite, every received copy),
``reading`` (merged Langfuse-like views), ``server`` (uvicorn runner that can stop listening),
``testing`` (``running_collector`` and ``CollectorHandle``) and ``views`` (rich terminal views).
"""
