"""Dialogs: sign-in, resident and household forms, case view, administration forms."""
