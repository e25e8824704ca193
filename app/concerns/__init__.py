"""Concern reports: what supporters notice, and how coordinators follow it up."""
