"""The registry of supporters (ほっとネット推進員): people and local businesses."""
