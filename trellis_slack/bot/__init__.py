"""The glue: listeners, turns, commands and the App Home."""
