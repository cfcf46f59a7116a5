"""The HTTP/1.1 server connection: protocol, request body, response sending, transport, messages.

It never imports aio/ws/ (nor ws/ it): aio/server.py alone joins the two protocols, handing an
upgraded connection from here to a WebSocket (tests/test_layers.py checks both).
"""
