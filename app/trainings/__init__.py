"""Trainings: sessions, sign-ups with capacity and waitlist, reminders, attendance."""
