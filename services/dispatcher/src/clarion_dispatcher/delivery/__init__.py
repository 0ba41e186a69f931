"""Delivery to providers: what the delivery workers of ``clarion.jobs.<type>`` call.

``providers`` holds one client per provider behind one interface (``providers.base``):
a job's rendered content and contact points in, an ``Outcome`` out (sent, retry later,
or failed for good), never an exception for what a provider answers.
"""
