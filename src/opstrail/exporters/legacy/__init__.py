"""Legacy batch ingestion path (``POST /api/public/ingestion``): encoding and the exporter."""
