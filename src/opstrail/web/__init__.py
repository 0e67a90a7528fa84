"""Server-rendered console pages (Jinja2 templates and small vanilla scripts, no build step)."""
