"""Notifications: the devices that receive push notifications, and what is pushed to them (ringing a
call, cancelling the ring, the waiting room) through Firebase Cloud Messaging."""
