"""The mitmproxy shell: addons that wire the pure core (config, routing) to flows."""
