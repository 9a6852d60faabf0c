"""routes.yaml, from the file to the typed objects every other package reads. `loader`
is the one place that reads the file, checked against `routes.schema.json` beside it
(`schema_messages` words its errors); `types` holds what it returns; `checks` is what
`modelmux check` adds; `model_facts` is what is known of each model; `edit` adds a
credential in place; `paths` and `file_problems` are where modelmux keeps its own files
and what it says when one is damaged. Pure: no mitmproxy, no network. Nothing is
re-exported here: an import names its module (`from modelmux.config.types import
Provider`, `from modelmux.config.loader import load`)."""
