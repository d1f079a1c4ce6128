"""The offline demo: the real bot between a local Slack and a local Trellis, shown in a browser."""
