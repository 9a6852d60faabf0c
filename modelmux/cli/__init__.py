"""The `modelmux` command. `main` runs the commands `parser` defines; `launcher` decides
which routes.yaml and which environment a profile gets, and which command starts the
gateway; `procs`, `foreground` and `windows` run it as a process; `shells` writes
`modelmux env` for each shell; `claude_env` is what Claude Code is told of a profile's
models; `status_report` is `modelmux status`; `import_logins` is `modelmux import`;
`check`, `probe` and `capabilities` are `modelmux check`, its live probes and
`--deep`, the only ones here that use the network. Nothing is re-exported here: an
import names its module."""
