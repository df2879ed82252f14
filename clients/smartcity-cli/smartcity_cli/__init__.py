"""The `smartcity` command-line client of the gateway: `cli` holds the commands and the calls,
`render` turns the replies into tables and JSON. It speaks the gRPC contract (smartcity.v1) and
imports nothing of the gateway's own code."""
