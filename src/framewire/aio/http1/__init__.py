"""The HTTP/1.1 server connection: protocol, request body, response sending, transport, handlers.

The Request and Response it makes and sends are the application layer's
(framewire/http/messages.py, the one module of framewire.http that aio imports).

It never imports aio/ws/ (nor ws/ it): aio/server.py alone joins the two protocols, handing an
upgraded connection from here to a WebSocket (tests/test_layers.py checks both).
"""
