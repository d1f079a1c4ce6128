"""Talking to Trellis: its chat protocol, connections, REST API and tokens."""
