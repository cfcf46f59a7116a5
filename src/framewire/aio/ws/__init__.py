"""The WebSocket over asyncio: WebSocket (the user API and its protocol side), its inbox,
keepalive, wakeup, socket poller, broadcast, the client and the server's WebSocket options.

It never imports aio/http1/ (nor http1/ it): aio/server.py alone joins the two protocols
(tests/test_layers.py checks both).
"""
