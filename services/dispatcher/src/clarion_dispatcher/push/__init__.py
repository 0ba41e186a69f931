"""A user's push notifications (CometChat's ``/push-notifications``): its push records
with the delivery workers' outcomes, and what its devices report (delivered, clicked,
engaged)."""
