"""Webhooks: signing (Standard Webhooks, standard library only, shared with robotni.client), the address check
that keeps deliveries off private networks, the HTTP POST to a checked address, and one delivery try.

Imported by the API (a subscription's URL and secret) and the worker (the delivery task and the sweeper); it
imports the store, never the API, the worker or the broker.
"""
