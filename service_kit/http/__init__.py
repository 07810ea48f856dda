"""The HTTP edge and everything on the request path of the web processes."""
