"""The overview page's files (GET /modelmux/overview, modelmux/addons/overview.py): plain
HTML, CSS and JavaScript, no build step, nothing fetched from elsewhere. No Python."""
