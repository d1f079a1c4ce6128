"""Fakes of the services trellis-slack talks to, for tests and the offline demo."""
