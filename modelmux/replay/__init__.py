"""Recorded sessions replayed as regression cases. `recordings` reads mitmproxy's flow
files as a replay needs them and holds the version of the record format the Recorder
writes; `compare` normalises recorded and replayed answers and says how they differ;
`config_text` moves a recording's routes.yaml onto the replay server; `scrubbing` takes
secrets out of what is recorded; `transcript` shows bodies as a person reads them (the
dashboard's content view too). All pure but `recordings`, which reads flow files with
mitmproxy; the Replayer that runs a replay is an addon. Nothing is re-exported here:
an import names its module."""
