"""`gcnseg serve`: an HTTP API and a web page over one Segmenter (app.py), run by uvicorn
(server.py). Needs the `serve` extra (the error without it says how to install it)."""
