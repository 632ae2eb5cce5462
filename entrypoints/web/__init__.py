"""The web app: a browser client of the public HTTP API, served as static files."""
