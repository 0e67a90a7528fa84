"""Server-rendered console pages (Jinja2 + htmx)."""
