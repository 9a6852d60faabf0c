"""Loaded after modelmux's script: appends each flow's modelmux notes, as they are when
its answer begins (what mitmweb's export shows of a flow still in flight), to the file
$MODELMUX_TEST_NOTES, one JSON line a flow."""

import json
import os


class NotesSeen:
    def responseheaders(self, flow) -> None:
        with open(os.environ["MODELMUX_TEST_NOTES"], "a") as file:
            file.write(json.dumps(flow.metadata.get("modelmux", {}), default=repr) + "\n")


addons = [NotesSeen()]
