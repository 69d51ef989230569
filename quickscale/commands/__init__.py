"""What each CLI command does; `quickscale/cli.py` parses options and prints."""
